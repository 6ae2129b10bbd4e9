#!/usr/bin/env python3
"""The alternative a user would pick: a Python Lambda handler with boto3, doing the same init
as orderhub's functions (read config, build DynamoDB, SQS, EventBridge and SSM clients), then
serving the Runtime API loop; each event does one DynamoDB GetItem. Used by the cold-start meter."""

import json
import os
import urllib.request

import boto3

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
TABLE = os.environ["ORDERS_TABLE"]
STAGE = os.environ["ORDERHUB_STAGE"]
session = boto3.session.Session()
dynamodb = session.client("dynamodb")
sqs = session.client("sqs")
events = session.client("events")
ssm = session.client("ssm")

while True:
    with urllib.request.urlopen(f"{API}/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read() or b"{}")
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "O#douyin#shop#1"}, "sk": {"S": "#"}})
    body = json.dumps({"found": "Item" in item}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{API}/invocation/{request_id}/response", data=body, method="POST"))
