"""Builders shared by the tests: API Gateway events, Segment calls and registries wired to fakes."""

from __future__ import annotations

import base64
import gzip as gzip_module
import json
import re
import shutil
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


# Three apps behind one registry, as README shows them: web passes its own key through, iOS has a separate valid
# key, the server source holds events to schema_id alone (no plan).
WEB_KEY, IOS_KEY, SERVER_KEY = "web-write-key", "ios-write-key", "server-write-key"
IOS_VALID_KEY, IOS_INVALID_KEY, SHARED_INVALID_KEY = "ios-valid-key", "ios-invalid-key", "shared-invalid-key"
THREE_SOURCES = {
    "version": 1,
    "invalid_write_key": SHARED_INVALID_KEY,
    "sources": {
        "web": {"write_keys": [WEB_KEY], "plans": ["segment/demo/"]},
        "ios": {"write_keys": [IOS_KEY], "plans": ["jaffle_shop/"], "valid_write_key": IOS_VALID_KEY,
                "invalid_write_key": IOS_INVALID_KEY},
        "server": {"write_keys": [SERVER_KEY]},
    },
}


# Three sources held to plans and controls of their own, over both example projects (BOTH_PROJECTS): web and iOS
# follow the acme/ tracking plan, iOS letting violations through; the server has no plan, so "Order Completed" is
# ambiguous for it (acme/ and jaffle_shop/ both have one), and it lets unplanned events through.
OWN_PLANS_AND_CONTROLS = {
    "version": 1,
    "invalid_write_key": SHARED_INVALID_KEY,
    "sources": {
        "web": {"write_keys": [WEB_KEY], "plans": ["acme/"]},
        "ios": {"write_keys": [IOS_KEY], "plans": ["acme/"], "controls": {"violations": "allow"},
                "valid_write_key": IOS_VALID_KEY, "invalid_write_key": IOS_INVALID_KEY},
        "server": {"write_keys": [SERVER_KEY], "controls": {"unplanned_events": "allow"}},
    },
}


def judged_by_source(prefix: str) -> list[dict[str, Any]]:
    """Three events each source of OWN_PLANS_AND_CONTROLS judges its own way: one found by its name, one breaking
    its schema, one that no plan has."""
    return [{"type": "track", "event": "Order Completed", "userId": "u1", "messageId": f"{prefix}-named",
             "properties": {"order_id": "o1", "revenue": 1}},
            track(test_property=1, message_id=f"{prefix}-bad"),
            {"type": "track", "event": "Not Planned", "userId": "u1", "messageId": f"{prefix}-unplanned", "properties": {}}]


# Where judged_by_source's events land, by destination key.
JUDGED_BY_SOURCE = {
    WEB_KEY: ["web-named"],
    IOS_VALID_KEY: ["ios-bad", "ios-named"],  # violations allowed
    IOS_INVALID_KEY: ["ios-unplanned"],
    SERVER_KEY: ["server-unplanned"],  # unplanned events allowed
    SHARED_INVALID_KEY: ["server-bad", "server-named", "web-bad", "web-unplanned"],  # server-named: ambiguous
}


def both_projects(folder: Path) -> Path:
    """The example Reflekt project and the example tracking plan in one schemas folder."""
    for project in (EXAMPLE_SCHEMAS, TRACKING_PLAN_SCHEMAS):
        shutil.copytree(project, folder, dirs_exist_ok=True)
    return folder


def config_file(folder: Path, document: Any) -> Path:
    """`document` written as folder/config.json: a configuration document for REGISTRY_CONFIG or --config."""
    path = folder / "config.json"
    path.write_text(json.dumps(document))
    return path


def sources_registry(config_dir: Path, segment_url: str | None = None, document: dict[str, Any] = THREE_SOURCES,
                     **env: str) -> Registry:
    """A registry as `./dev serve --config FILE` builds it, forwarding to a fake Segment when its URL is given."""
    environ = {"SCHEMA_DIR": str(EXAMPLE_SCHEMAS), "EVENTS_DIR": str(config_dir / "events"), **env}
    if segment_url:
        environ["SEGMENT_API_HOST"] = segment_url
    return Registry.from_settings(Settings.from_env(environ, local=True, config_file=str(config_file(config_dir, document))))


def load_captures(name: str) -> list[dict[str, Any]]:
    return json.loads((EVENTS / name).read_text())


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response["body"] else None


def tune_retries(registry: Registry, policy: Any = None, sleep: Any = None) -> Registry:
    """Sets the retry policy and/or sleep of the Segment clients (one for valid events, one for invalid ones)."""
    for client in registry.outlets:
        if policy is not None:
            client.policy = policy
        if sleep is not None:
            client.sleep = sleep
    return registry
