"""Builders shared by the tests: API Gateway events, Segment calls and registries wired to fakes."""

from __future__ import annotations

import base64
import gzip as gzip_module
import json
import re
from pathlib import Path
from typing import Any

from reflekt_registry.config import Settings
from reflekt_registry.handler import Registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_SCHEMAS = REPO / "examples" / "reflekt-project" / "schemas"
TRACKING_PLAN_SCHEMAS = REPO / "examples" / "tracking-plan" / "schemas"
EVENTS = Path(__file__).resolve().parent / "events"
TEST_EVENT = "segment/demo/Test_Event/1-0.json"
VALID_KEY = "valid-source-key"
INVALID_KEY = "invalid-source-key"
CLIENT_KEY = "client-key"


def basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def api_event(
    body: Any = None,
    *,
    method: str = "POST",
    path: str = "/v1/batch",
    headers: dict[str, str] | None = None,
    write_key: str | None = CLIENT_KEY,
    gzip: bool = False,
    source_ip: str = "203.0.113.9",
) -> dict[str, Any]:
    """An API Gateway HTTP API 2.0 event; dict/list bodies are JSON-encoded, gzip bodies base64-encoded."""
    all_headers = {"content-type": "application/json", **({"authorization": basic(write_key)} if write_key else {})}
    all_headers.update(headers or {})
    raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    encoded = False
    if gzip:
        raw = base64.b64encode(gzip_module.compress(raw.encode() if isinstance(raw, str) else raw)).decode()
        all_headers["content-encoding"] = "gzip"
        encoded = True
    elif isinstance(raw, bytes):
        raw, encoded = base64.b64encode(raw).decode(), True
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "headers": all_headers,
        "requestContext": {
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "http": {"method": method, "path": path, "sourceIp": source_ip},
        },
        "body": raw,
        "isBase64Encoded": encoded,
    }


# Hosts that would take a client away from a registry on the company's own domain: AWS's own API hostname and Segment's.
FOREIGN_HOST = re.compile(r"execute-api\.|segment\.(?:io|com)|segmentapis\.com")


def foreign_hosts(document: Any) -> list[str]:
    """The string values anywhere in a JSON document that name a FOREIGN_HOST (keys such as "Segment.io" are names)."""
    if isinstance(document, dict):
        return [found for value in document.values() for found in foreign_hosts(value)]
    if isinstance(document, list):
        return [found for value in document for found in foreign_hosts(value)]
    return [document] if isinstance(document, str) and FOREIGN_HOST.search(document.lower()) else []


def track(schema_id: str | None = TEST_EVENT, message_id: str | None = None, **properties: Any) -> dict[str, Any]:
    props = dict(properties)
    if schema_id is not None:
        props["schema_id"] = schema_id
    event = {"type": "track", "event": "Test Event", "userId": "u1", "properties": props}
    if message_id:
        event["messageId"] = message_id
    return event


def make_registry(segment_url: str | None = None, schema_dir: Path = EXAMPLE_SCHEMAS, **env: str) -> Registry:
    """A registry as the local server builds it, forwarding to a fake Segment when its URL is given."""
    environ = {"SCHEMA_DIR": str(schema_dir), **env}
    if segment_url:
        environ.update(SEGMENT_API_HOST=segment_url, VALID_SEGMENT_WRITE_KEY=VALID_KEY, INVALID_SEGMENT_WRITE_KEY=INVALID_KEY)
    return Registry.from_settings(Settings.from_env(environ, local=True))


def load_captures(name: str) -> list[dict[str, Any]]:
    return json.loads((EVENTS / name).read_text())


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response["body"] else None


def tune_retries(registry: Registry, policy: Any = None, sleep: Any = None) -> Registry:
    """Sets the retry policy and/or sleep of both sources' Segment clients (each source owns one)."""
    for source in (registry.forwarder.valid, registry.forwarder.invalid):
        if policy is not None:
            source.client.policy = policy
        if sleep is not None:
            source.client.sleep = sleep
    return registry
