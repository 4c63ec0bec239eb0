"""The original reflekt-registry's per-event work, re-created from GClunies/reflekt-registry at 910303a
(chalicelib/s3_registry.py and chalicelib/validator.py; seed-and-reflekt.md §1.5-1.6):

- one module-level boto3 S3 client, reused across warm invocations;
- for every event, download_fileobj of s3://<bucket>/schemas/<schema_id> (a HeadObject then a GetObject), no cache;
- for every event, a new jsonschema Draft7Validator (no format checker), is_valid, then every error sorted by str.

Two liberties, both in the original's favour: identify/group traits are validated (the original crashed on them),
and forwarding is left to the caller (the cold benchmark forwards with urllib3, not the heavier analytics-python).
Imports only what the original imported for this work, so the cold benchmark's fresh interpreter pays the same.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
from jsonschema import Draft7Validator

SCHEMA_PREFIX = "schemas/"


class S3SchemaRegistry:
    def __init__(self, bucket: str, client: Any = None):
        self.bucket = bucket
        self.s3 = client or boto3.client("s3")

    def get_schema(self, schema_id: str) -> dict[str, Any]:
        bytes_buffer = io.BytesIO()
        self.s3.download_fileobj(Bucket=self.bucket, Key=f"{SCHEMA_PREFIX}{schema_id}", Fileobj=bytes_buffer)
        return json.loads(bytes_buffer.getvalue().decode("utf-8"))


def validate_event(registry: S3SchemaRegistry, schema_id: str, event_properties: dict[str, Any]) -> tuple[bool, list[str]]:
    schema = registry.get_schema(schema_id)
    validator = Draft7Validator(schema=schema)
    if not validator.is_valid(event_properties):
        errors = [f"{error.message}" for error in sorted(validator.iter_errors(event_properties), key=str)]
        return False, errors
    return True, []


def judge(registry: S3SchemaRegistry):
    """validate_event as a pipeline.Judge."""
    return lambda schema_id, payload: validate_event(registry, schema_id, payload)[1]
