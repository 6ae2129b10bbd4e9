#!/usr/bin/env python3
"""moto's server (from PyPI), started the way orderhub's tests need it.

Two settings differ from `moto_server`, both to make the emulator behave like DynamoDB where
the tests depend on it:

1. DynamoDB requests are handled one at a time (connections stay concurrent). moto's backends keep
   plain Python dicts; with its default threaded server two concurrent TransactWriteItems can
   both pass the same condition, which DynamoDB never allows. Serialising requests gives
   every call, transactions included, DynamoDB's isolation.
2. TransactWriteItems rolls back only the items it touched. moto snapshots whole tables
   with `copy.deepcopy` before every transaction (time grows with the table) and restores the
   whole table on a cancelled one. Here the touched items are snapshotted and restored, which
   is the same all-or-nothing outcome at a cost independent of table size.
3. A Query of a table's own key reads that partition only. moto sorts every item of the
   table on each Query and filters by the partition key afterwards; the result is the same.

    moto_server.py -H 127.0.0.1 -p 5000
"""

import argparse
import copy
import io
import signal
import sys
import threading
import types

from werkzeug.serving import run_simple

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

LOCK = threading.RLock()


class Serialised:
    """WSGI middleware: one DynamoDB request at a time, the whole response produced under the
    lock. The body is read before the lock is taken, so a client that stops sending mid-request
    (a fault the soak injects) holds nobody up; other services (SQS long polls among them) are
    not serialised, as with moto's own threaded server."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return list(self.app(environ, start_response))
        with LOCK:
            return list(self.app(environ, start_response))


_original_transact = DynamoDBBackend.transact_write_items
_no_table_copies = types.SimpleNamespace(deepcopy=lambda value: value)


def _key_of(backend, op_type, op):
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
        if table.range_key_attr is not None and table.range_key_attr in op["Item"]:
            key[table.range_key_attr] = op["Item"][table.range_key_attr]
        return key
    return op["Key"]


def transact_write_items(self, transact_items):
    snapshots = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        if op_type == "ConditionCheck" or op.get("TableName") not in self.tables:
            continue
        try:
            key = _key_of(self, op_type, op)
            current = self.get_item(op["TableName"], key)
        except Exception:  # malformed keys are reported by moto itself below
            continue
        before = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        snapshots.append((op["TableName"], key, before))
    dynamodb_models.copy = _no_table_copies
    try:
        return _original_transact(self, transact_items)
    except Exception:
        # Undo in reverse order: the state before the transaction, item by item.
        for table_name, key, before in reversed(snapshots):
            if before is None:
                if self.get_item(table_name, key) is not None:
                    self.get_table(table_name).delete_item(*self.get_keys_value(self.get_table(table_name), key))
            else:
                self.put_item(table_name, before)
        raise
    finally:
        dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = transact_write_items

_original_query = Table.query


def query(self, hash_key, *args, **kwargs):
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name is not None or hash_key is None:
        return _original_query(self, hash_key, *args, **kwargs)
    partition = self.items.get(hash_key)
    if partition is None:
        subset = []
    elif self.range_key_attr:
        subset = sorted(partition.values(), key=lambda item: item.range_key)
    else:
        subset = [partition]
    # Requests are serialised, so shadowing the method for this one call is safe.
    self.all_items = lambda: subset
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


Table.query = query


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(args.host, args.port, Serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
