#!/usr/bin/env python3
"""Creates orderhub's AWS resources on a local AWS API from infra/template.yaml.

The SAM template is translated offline (aws-sam-translator), then created with CloudFormation
CreateStack on the endpoint (moto's server). The environment each function gets is read back
from the created Lambda functions, so the local stack uses exactly the names the template sets.

    stack.py --endpoint http://127.0.0.1:5000 --env-out .stack/env [--stage dev]
"""

import argparse
import io
import json
import os
import shlex
import sys
import time
import zipfile

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "infra", "template.yaml")
CODE_BUCKET = "orderhub-local-code"
CODE_KEY = "bootstrap.zip"
STACK = "orderhub"


def translate(region: str, stage: str) -> dict:
    with open(TEMPLATE, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # CloudFormation wants code in S3; the functions are served by `cargo lambda watch` locally.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/{CODE_KEY}"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    return Translator({}, Parser()).translate(template, parameter_values={"Stage": stage})


def placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho served by cargo lambda watch locally\n")
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"))
    ap.add_argument("--region", default=os.environ.get("AWS_REGION", "cn-north-1"))
    ap.add_argument("--stage", default="local")
    ap.add_argument("--env-out", default=os.path.join(ROOT, ".stack", "env"))
    ap.add_argument("--print-template", action="store_true", help="print the translated template and exit")
    args = ap.parse_args()

    cfn_template = translate(args.region, args.stage)
    if args.print_template:
        json.dump(cfn_template, sys.stdout, indent=2)
        return 0

    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=args.region,
    )
    client = lambda service: session.client(service, endpoint_url=args.endpoint)  # noqa: E731

    s3 = client("s3")
    s3.create_bucket(Bucket=CODE_BUCKET, CreateBucketConfiguration={"LocationConstraint": args.region})
    s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=placeholder_zip())

    cfn = client("cloudformation")
    started = time.monotonic()
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": args.stage}],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    while True:
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if status.endswith("FAILED") or status.startswith("ROLLBACK"):
            print(f"stack {status}: {stack.get('StackStatusReason', '')}", file=sys.stderr)
            return 1
        if time.monotonic() - started > 60:
            print(f"stack still {status} after 60 s", file=sys.stderr)
            return 1
        time.sleep(0.2)

    resources = {
        r["LogicalResourceId"]: r
        for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }
    lam = client("lambda")
    iam = client("iam")
    # moto's CloudFormation skips EventBridge Scheduler resources: create them through the
    # Scheduler API from the same translated template, so they exist and can be inspected.
    scheduler = client("scheduler")
    for logical, resource in cfn_template["Resources"].items():
        if resource["Type"] != "AWS::Scheduler::Schedule" or logical in resources:
            continue
        props = resource["Properties"]
        target = props["Target"]
        function_logical = target["Arn"]["Fn::GetAtt"][0]
        role_logical = target["RoleArn"]["Fn::GetAtt"][0]
        function_arn = lam.get_function_configuration(
            FunctionName=resources[function_logical]["PhysicalResourceId"])["FunctionArn"]
        role_arn = iam.get_role(RoleName=resources[role_logical]["PhysicalResourceId"])["Role"]["Arn"]
        scheduler.create_schedule(
            Name=logical,
            ScheduleExpression=props["ScheduleExpression"],
            ScheduleExpressionTimezone=props.get("ScheduleExpressionTimezone", "UTC"),
            FlexibleTimeWindow=props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
            Target={"Arn": function_arn, "RoleArn": role_arn, "Input": target.get("Input", "{}")},
        )
        resources[logical] = {"ResourceType": "AWS::Scheduler::Schedule", "PhysicalResourceId": logical}
    # moto's CloudFormation skips CloudWatch alarms too: put them through the CloudWatch API from
    # the same translated template, their names, queues and functions resolved to this stack's.
    cloudwatch = client("cloudwatch")
    parameters = {name: str(p.get("Default", "")) for name, p in cfn_template.get("Parameters", {}).items()}
    parameters.update({"Stage": args.stage, "AWS::Region": args.region, "AWS::Partition": "aws-cn" if args.region.startswith("cn-") else "aws"})

    def resolve(value):
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            if name in parameters:
                return parameters[name]
            # A resource absent on moto (the HTTP API): a stand-in, so the alarm still exists.
            return resources.get(name, {}).get("PhysicalResourceId", f"local-{name}")
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            physical = resources[logical]["PhysicalResourceId"]
            if attribute == "QueueName":
                return physical.rsplit("/", 1)[-1]
            raise ValueError(f"alarm: unsupported attribute {logical}.{attribute}")
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name, val in parameters.items():
                text = text.replace("${" + name + "}", val)
            return text
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    for logical, resource in cfn_template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm" or logical in resources:
            continue
        props = resolve(resource["Properties"])
        for number in ("Period", "EvaluationPeriods"):
            props[number] = int(props[number])
        props["Threshold"] = float(props["Threshold"])
        cloudwatch.put_metric_alarm(**props)
        resources[logical] = {"ResourceType": "AWS::CloudWatch::Alarm", "PhysicalResourceId": props["AlarmName"]}
    # moto cannot run Lambda functions here (no Docker) but would try on every message sent to a
    # queue with an event source mapping, hiding the message. The mappings stay (as created from
    # the template) but disabled: the tests and the demo play the event sources themselves.
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    # For the same reason, rules stay but lose their Lambda targets: moto's PutEvents fails with a
    # 500 (NotImplementedError) on a matching rule whose target is a function, which would fail
    # every publisher of those events. The tests and the demo hand such events to the function.
    events = client("events")
    for bus in [b["Name"] for b in events.list_event_buses()["EventBuses"]]:
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            lambdas = [t["Id"] for t in targets if ":lambda:" in t["Arn"]]
            if lambdas:
                events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=lambdas)

    # moto's CloudFormation ignores TimeToLiveSpecification: apply it from the template.
    dynamodb = client("dynamodb")
    for logical, resource in cfn_template["Resources"].items():
        spec = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource["Type"] == "AWS::DynamoDB::Table" and spec:
            table = resources[logical]["PhysicalResourceId"]
            current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if current.get("AttributeName") != spec["AttributeName"]:
                dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)

    # Every function's environment, as the template sets it, read back from the created functions.
    env: dict[str, str] = {}
    for logical, resource in resources.items():
        if resource["ResourceType"] != "AWS::Lambda::Function":
            continue
        config = lam.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
        for name, value in config.get("Environment", {}).get("Variables", {}).items():
            if env.get(name, value) != value:
                print(f"functions disagree on {name}: {env[name]} vs {value}", file=sys.stderr)
                return 1
            env[name] = value
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    os.makedirs(os.path.dirname(args.env_out), exist_ok=True)
    with open(args.env_out, "w", encoding="utf-8") as f:
        # Quoted: moto leaves some `Fn::Sub` references unresolved (`${WebhookApi}` of an HTTP
        # API it does not model), and a shell sourcing this file must not expand them.
        for name in sorted(env):
            f.write(f"{name}={shlex.quote(str(env[name]))}\n")
    with open(os.path.join(os.path.dirname(args.env_out), "resources.json"), "w", encoding="utf-8") as f:
        json.dump({"resources": {k: {"type": v["ResourceType"], "physical": v["PhysicalResourceId"]} for k, v in resources.items()},
                   "outputs": outputs}, f, indent=2, sort_keys=True)
    print(f"stack {STACK} created in {time.monotonic() - started:.1f} s: {len(resources)} resources; env in {args.env_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
