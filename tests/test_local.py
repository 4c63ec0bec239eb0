"""The local server: real HTTP, the real analytics-python SDK, and the command README starts it with."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from segment.analytics import Client

from helpers import (CLIENT_KEY, INVALID_KEY, REPO, SERVER_KEY, TEST_EVENT, THREE_SOURCES, TRACKING_PLAN_SCHEMAS, VALID_KEY,
                     WEB_KEY, basic, foreign_hosts, make_registry, track)
from local_support import assert_judged_by_name, call, serve
from reflekt_registry.handler import Registry


@pytest.fixture
def local_url(segment) -> Iterator[str]:
    """The local server, forwarding to the fake Segment, on a free loopback port."""
    with serve(make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY)) as url:
        yield url


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_python_sdk_through_the_local_server(local_url, segment, gzip):
    """analytics-python with only its host overridden: each call reaches the right source, intact."""
    errors = []
    client = Client(CLIENT_KEY, host=local_url, gzip=gzip, max_retries=0, on_error=lambda e, batch: errors.append(e))
    client.track(user_id="u1", event="Test Event", properties={"schema_id": TEST_EVENT, "test_property": "ok"},
                 message_id="sdk-valid")
    client.track(user_id="u1", event="Test Event", properties={"schema_id": TEST_EVENT, "test_property": 3},
                 message_id="sdk-invalid")
    client.identify(user_id="u1", traits={"schema_id": "jaffle_shop/Identify/1-0.json", "email": "a@b.co"}, message_id="sdk-identify")
    client.page(user_id="u1", name="Home", properties={"schema_id": "jaffle_shop/Page_Viewed/1-0.json", "path": "/"},
                message_id="sdk-page")
    client.group(user_id="u1", group_id="g1", message_id="sdk-group")
    client.alias(previous_id="anon-1", user_id="u1", message_id="sdk-alias")
    client.screen(user_id="u1", name="Home", properties={"schema_id": "jaffle_shop/Screen_Viewed/1-0.json"},
                  message_id="sdk-screen")
    client.flush()
    client.shutdown()
    assert errors == []
    assert sorted(segment.message_ids(VALID_KEY)) == ["sdk-alias", "sdk-group", "sdk-identify", "sdk-page", "sdk-screen", "sdk-valid"]
    [invalid] = segment.events(INVALID_KEY)
    assert invalid["messageId"] == "sdk-invalid"
    assert invalid["properties"]["validation_errors"] == ["$.properties.test_property must be string"]
    assert invalid["context"]["library"]["name"] == "analytics-python"
    assert invalid["context"]["ip"] == "127.0.0.1"


def record_answers(registry: Registry) -> list[tuple[int, str | None]]:
    """Each status the registry answers, with the X-Retry-Count analytics-python sends when it retries a batch."""
    answers = []
    handle = registry.handle

    def recording(event: dict[str, Any]) -> dict[str, Any]:
        response = handle(event)
        answers.append((response["statusCode"], event["headers"].get("x-retry-count")))
        return response

    registry.handle = recording  # type: ignore[method-assign]
    return answers


def test_python_sdk_retries_a_503_and_segment_gets_each_event_once(segment):
    """Segment failing past the registry's budget → 503 → the SDK retries the batch and it lands once."""
    registry = make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY)
    answers = record_answers(registry)
    segment.fail(times=4, status=503)  # one registry request's worth of attempts
    with serve(registry) as url:
        client = Client(CLIENT_KEY, host=url, max_retries=3, sync_mode=False)
        client.track(user_id="u1", event="Test Event", properties={"schema_id": TEST_EVENT, "test_property": "x"},
                     message_id="m-retry")
        client.flush()
        client.shutdown()
    assert answers == [(503, None), (200, "1")]  # the SDK was told 503, and its first retry landed
    assert segment.message_ids(VALID_KEY) == ["m-retry"]


def test_python_sdk_with_an_unknown_key_is_refused(local_url, segment):
    """The allowlist holds over HTTP too: 401, and nothing forwarded."""
    errors = []
    client = Client("intruder", host=local_url, max_retries=0, on_error=lambda e, batch: errors.append(e))
    client.track(user_id="u1", event="Test Event", properties={"schema_id": TEST_EVENT, "test_property": "x"})
    client.flush()
    client.shutdown()
    assert [getattr(e, "status", None) for e in errors] == [401]
    assert segment.received == []


def test_chunked_gzip_upload_like_kotlin(local_url, segment):
    """Kotlin streams gzip bodies chunked, with the write key only in the body."""
    import gzip
    import http.client

    body = gzip.compress(json.dumps({"writeKey": CLIENT_KEY, "batch": [
        {"type": "track", "event": "Test Event", "anonymousId": "a1", "messageId": "kotlin-1",
         "properties": {"schema_id": TEST_EVENT, "test_property": "x"}}]}).encode())
    host, port = local_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/v1/b", body=iter([body[:10], body[10:]]), encode_chunked=True,
                       headers={"Content-Type": "text/plain", "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"success": True})
    assert segment.message_ids(VALID_KEY) == ["kotlin-1"]


def test_settings_name_the_custom_domain_the_request_came_to(local_url):
    """On the company's own domain (Host: events.example.com) the settings keep browsers and apps on that host."""
    status, _, document = call(f"{local_url}/v1/projects/{CLIENT_KEY}/settings",
                               headers={"Host": "events.example.com", "X-Forwarded-Proto": "https"})
    assert status == 200, document
    segment_io = document["integrations"]["Segment.io"]
    assert (segment_io["apiHost"], segment_io["protocol"]) == ("events.example.com/v1", "https")
    assert foreign_hosts(document) == []


def test_readme_serve_command_runs_on_the_embedded_default(tmp_path):
    """`./dev serve` with no configuration: example schemas, events to JSONL files, any key accepted (and said)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "SEGMENT_", "SCHEMA_", "VALID_", "INVALID_"))}
    env.update(PYTHONPATH=str(REPO / "function"), EVENTS_DIR=str(tmp_path / "events"))
    process = subprocess.Popen([sys.executable, "-m", "reflekt_registry.local", "--port", "0"], cwd=tmp_path, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        banner = [process.stderr.readline() for _ in range(4)]
        assert "ANY key is accepted" in banner[3]
        url = re.search(r"http://\S+", banner[0])[0]
        body = json.dumps({"batch": [
            {"type": "track", "event": "Test Event", "userId": "u1", "properties": {"schema_id": TEST_EVENT, "test_property": "x"}},
            {"type": "track", "event": "Test Event", "userId": "u1", "properties": {"schema_id": TEST_EVENT}},
        ]}).encode()
        request = urllib.request.Request(f"{url}/v1/batch", data=body, headers={"Authorization": basic("any-key")})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response) == {"success": True}
    finally:
        process.terminate()
        process.wait(timeout=10)
    valid = _lines(tmp_path / "events" / "valid.jsonl")
    invalid = _lines(tmp_path / "events" / "invalid.jsonl")
    assert [e["properties"]["test_property"] for e in valid] == ["x"]
    assert invalid[0]["context"]["reflekt"]["violations"][0]["keyword"] == "required"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_serve_with_a_config_file_writes_each_sources_events_apart(tmp_path):
    """`./dev serve --config FILE`: the banner names the sources, and each one's events get their own files."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(THREE_SOURCES))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "SEGMENT_", "SCHEMA_", "VALID_", "INVALID_"))}
    env.update(PYTHONPATH=str(REPO / "function"), EVENTS_DIR=str(tmp_path / "events"))
    process = subprocess.Popen([sys.executable, "-m", "reflekt_registry.local", "--port", "0", "--config", str(config)],
                               cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        banner = [process.stderr.readline() for _ in range(4)]
        assert banner[2].strip() == f"events:  {tmp_path / 'events'}/<source>/valid.jsonl and {tmp_path / 'events'}/<source>/invalid.jsonl"
        assert banner[3].strip().startswith(f"sources: web, ios, server (from {config}; re-read every 60 s)")
        url = re.search(r"http://\S+", banner[0])[0]
        for key, value in ((WEB_KEY, "x"), (SERVER_KEY, 1)):
            body = json.dumps({"batch": [track(test_property=value)]}).encode()
            request = urllib.request.Request(f"{url}/v1/batch", data=body, headers={"Authorization": basic(key)})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.load(response) == {"success": True}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert sorted(p.relative_to(tmp_path / "events").as_posix() for p in (tmp_path / "events").rglob("*.jsonl")) == [
        "server/invalid.jsonl", "web/valid.jsonl"]


def test_serve_with_a_bad_config_file_says_which_key_and_stops(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"version": 1, "sources": {"web": {"write_keys": []}}}))
    result = subprocess.run([sys.executable, "-m", "reflekt_registry.local", "--port", "0", "--config", str(config)],
                            env={**os.environ, "PYTHONPATH": str(REPO / "function")}, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"configuration error: REGISTRY_CONFIG={str(config)!r}: sources.web.write_keys: "
                                     "expected a non-empty array of write keys")


def test_python_sdk_against_a_tracking_plan_without_schema_ids(segment):
    """An app that never heard of schema_id: each call is judged by its name and event_version."""
    errors = []
    with serve(make_registry(segment.url, TRACKING_PLAN_SCHEMAS, REGISTRY_WRITE_KEYS=CLIENT_KEY)) as url:
        client = Client(CLIENT_KEY, host=url, max_retries=0, on_error=lambda e, batch: errors.append(e))
        client.track(user_id="u1", event="Order Completed", properties={"order_id": "o1", "revenue": 9.5, "coupon": "C"},
                     message_id="py-v1")
        client.track(user_id="u1", event="Order Completed", properties={"order_id": "o2", "total": 9.5, "currency": "EUR"},
                     context={"protocols": {"event_version": 2}}, message_id="py-v2")
        client.track(user_id="u1", event="Order Completed", properties={"order_id": "o3", "revenue": 9.5},
                     context={"protocols": {"event_version": 2}}, message_id="py-v2-invalid")
        client.track(user_id="u1", event="Order Shipped", properties={"order_id": "o1"}, message_id="py-unplanned")
        client.identify(user_id="u1", traits={"email": "a@b.co"}, message_id="py-identify")
        client.group(user_id="u1", group_id="g1", traits={"name": "Acme"}, message_id="py-group")
        client.page(user_id="u1", name="Home", properties={"path": "/"}, message_id="py-page")
        client.screen(user_id="u1", name="Home", properties={"section": "start"}, message_id="py-screen")
        client.flush()
        client.shutdown()
    assert errors == []
    assert_judged_by_name(segment, "py")

