"""The local server on a free loopback port, and the plain HTTP calls an app team's test would make to it."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from helpers import CLIENT_KEY, INVALID_KEY, VALID_KEY, basic
from reflekt_registry.handler import Registry
from reflekt_registry.local.inspection import RecentEvents
from reflekt_registry.local.server import make_server


@contextmanager
def serve(registry: Registry, recent: RecentEvents | None = None) -> Iterator[str]:
    server = make_server(registry, "127.0.0.1", 0, recent)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def call(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """Status, lower-cased headers and the body (parsed when JSON); error statuses are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, raw_headers, raw = e.code, e.headers, e.read()
    response_headers = {name.lower(): value for name, value in raw_headers.items()}
    parsed = json.loads(raw) if response_headers.get("content-type") == "application/json" else raw.decode()
    return status, response_headers, parsed


def send(base_url: str, *events: dict[str, Any], path: str = "/v1/batch") -> int:
    """Posts the events as one batch, as an SDK would; returns the status."""
    status, _, _ = call(base_url + path, "POST", {"batch": list(events)}, {"Authorization": basic(CLIENT_KEY)})
    return status


def get(base_url: str, path: str) -> Any:
    status, _, body = call(base_url + path)
    assert status == 200, body
    return body


def assert_judged_by_name(segment, sdk: str) -> None:
    """What every SDK's run against the example tracking plan must deliver (the calls each test sends)."""
    valid = {event["messageId"]: event for event in segment.events(VALID_KEY)}
    assert {f"{sdk}-v1", f"{sdk}-v2", f"{sdk}-identify", f"{sdk}-group", f"{sdk}-page"} <= set(valid)
    assert valid[f"{sdk}-v1"]["context"]["reflekt"]["schemaId"] == "acme/Order_Completed/1-1.json"
    assert valid[f"{sdk}-v2"]["context"]["reflekt"]["schemaId"] == "acme/Order_Completed/2-0.json"
    assert valid[f"{sdk}-identify"]["context"]["reflekt"]["schemaId"] == "acme/Identify/1-0.json"
    invalid = {event["messageId"]: event["context"]["reflekt"] for event in segment.events(INVALID_KEY)}
    assert set(invalid) == {f"{sdk}-v2-invalid", f"{sdk}-unplanned"}
    assert invalid[f"{sdk}-v2-invalid"]["schemaId"] == "acme/Order_Completed/2-0.json"
    assert invalid[f"{sdk}-unplanned"]["unplanned"] is True
