"""The real @segment/analytics-node SDK against the local server: host and path overridden, nothing else."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from segment.analytics import Client

from helpers import (CLIENT_KEY, INVALID_KEY, IOS_INVALID_KEY, IOS_KEY, IOS_VALID_KEY, SERVER_KEY, SHARED_INVALID_KEY,
                     TEST_EVENT, TRACKING_PLAN_SCHEMAS, VALID_KEY, WEB_KEY, make_registry, sources_registry)
from js_sdks import NODE_SDK_SCRIPT, install
from local_support import assert_judged_by_name, serve

@pytest.fixture(scope="module")
def node_sdk() -> Path:
    install()
    return NODE_SDK_SCRIPT


@pytest.fixture
def local_url(segment) -> Iterator[str]:
    with serve(make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY)) as url:
        yield url


def send(script: Path, host: str, path: str, calls: list, write_key: str = CLIENT_KEY) -> list[str]:
    config = {"host": host, "path": path, "writeKey": write_key, "calls": calls}
    result = subprocess.run(["node", str(script), json.dumps(config)], capture_output=True, text=True, timeout=60,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])["failures"]


def test_node_sdk_calls_reach_their_sources(node_sdk, local_url, segment):
    """All six calls in one batch: the valid ones at the valid source, the invalid one annotated at the other."""
    calls = [
        ["track", {"userId": "u1", "event": "Test Event", "messageId": "node-valid",
                   "properties": {"schema_id": TEST_EVENT, "test_property": "ok"}}],
        ["track", {"userId": "u1", "event": "Test Event", "messageId": "node-invalid",
                   "properties": {"schema_id": TEST_EVENT, "test_property": 7}}],
        ["identify", {"userId": "u1", "messageId": "node-identify",
                      "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": "a@b.co"}}],
        ["page", {"userId": "u1", "name": "Home", "messageId": "node-page",
                  "properties": {"schema_id": "jaffle_shop/Page_Viewed/1-0.json", "path": "/"}}],
        ["screen", {"userId": "u1", "name": "Home", "messageId": "node-screen",
                    "properties": {"schema_id": "jaffle_shop/Screen_Viewed/1-0.json"}}],
        ["group", {"userId": "u1", "groupId": "g1", "messageId": "node-group"}],
        ["alias", {"userId": "u1", "previousId": "anon-1", "messageId": "node-alias"}],
    ]
    # Node drops a path prefix in host when path is absolute, so the path goes in `path` (README, SDK set-up).
    assert send(node_sdk, local_url, "/v1/batch", calls) == []
    assert sorted(segment.message_ids(VALID_KEY)) == sorted(
        ["node-valid", "node-identify", "node-page", "node-screen", "node-group", "node-alias"])
    [invalid] = segment.events(INVALID_KEY)
    assert invalid["messageId"] == "node-invalid"
    assert invalid["properties"]["validation_errors"] == ["$.properties.test_property must be string"]
    assert invalid["context"]["library"]["name"] == "@segment/analytics-node"


def test_node_sdk_with_an_unknown_key_is_refused(node_sdk, local_url, segment):
    """The Node SDK sees the 401 (and drops the batch, as it does for any 4xx); nothing is forwarded."""
    calls = [["track", {"userId": "u1", "event": "Test Event", "properties": {"schema_id": TEST_EVENT, "test_property": "x"}}]]
    failures = send(node_sdk, local_url, "/v1/batch", calls, write_key="intruder")
    assert failures and segment.received == []


def test_two_sdks_with_two_sources_each_land_in_their_own(node_sdk, tmp_path, segment):
    """analytics-python as the web app and analytics-node as the server, each with its own key, through one registry:
    every event arrives exactly once, under its own source's keys, and no key carries the other's events."""
    with serve(sources_registry(tmp_path, segment.url)) as url:
        errors = []
        client = Client(WEB_KEY, host=url, max_retries=0, on_error=lambda e, batch: errors.append(e))
        client.track(user_id="u1", event="Test Event", properties={"schema_id": TEST_EVENT, "test_property": "ok"},
                     message_id="py-valid")
        client.track(user_id="u1", event="Test Event", properties={"schema_id": TEST_EVENT, "test_property": 1},
                     message_id="py-invalid")
        client.flush()
        client.shutdown()
        calls = [
            ["track", {"userId": "u1", "event": "Test Event", "messageId": "node-valid",
                       "properties": {"schema_id": TEST_EVENT, "test_property": "ok"}}],
            ["track", {"userId": "u1", "event": "Test Event", "messageId": "node-invalid",
                       "properties": {"schema_id": TEST_EVENT, "test_property": 2}}],
        ]
        assert send(node_sdk, url, "/v1/batch", calls, write_key=SERVER_KEY) == []
    assert errors == []
    assert {key: sorted(segment.message_ids(key)) for key in segment.by_key()} == {
        WEB_KEY: ["py-valid"], SERVER_KEY: ["node-valid"], SHARED_INVALID_KEY: ["node-invalid", "py-invalid"]}
    libraries = {event["messageId"]: event["context"]["library"]["name"] for event in segment.events(SHARED_INVALID_KEY)}
    assert libraries == {"py-invalid": "analytics-python", "node-invalid": "@segment/analytics-node"}


def test_two_sdks_with_separate_valid_keys(node_sdk, tmp_path, segment):
    """The iOS source's explicit valid key and own invalid key: the Node SDK sends with the iOS key, and nothing of
    it reaches the web source's keys."""
    with serve(sources_registry(tmp_path, segment.url)) as url:
        calls = [["track", {"userId": "u1", "event": "Test Event", "messageId": f"ios-{n}",
                            "properties": {"schema_id": TEST_EVENT, "test_property": value}}]
                 for n, value in enumerate(["ok", 3])]
        assert send(node_sdk, url, "/v1/batch", calls, write_key=IOS_KEY) == []
        assert send(node_sdk, url, "/v1/batch", [["track", {"userId": "u1", "event": "Test Event", "messageId": "web-0",
                    "properties": {"schema_id": TEST_EVENT, "test_property": "ok"}}]], write_key=WEB_KEY) == []
    assert segment.by_key() == {IOS_VALID_KEY: 1, IOS_INVALID_KEY: 1, WEB_KEY: 1}
    assert segment.message_ids(IOS_VALID_KEY) == ["ios-0"] and segment.message_ids(IOS_INVALID_KEY) == ["ios-1"]


def test_node_sdk_against_a_tracking_plan_without_schema_ids(node_sdk, segment):
    """An app that never heard of schema_id: each call is judged by its name and event_version."""
    v2 = {"protocols": {"event_version": 2}}
    calls = [
        ["track", {"userId": "u1", "event": "Order Completed", "messageId": "node-v1",
                   "properties": {"order_id": "o1", "revenue": 9.5}}],
        ["track", {"userId": "u1", "event": "Order Completed", "messageId": "node-v2", "context": v2,
                   "properties": {"order_id": "o2", "total": 9.5, "currency": "USD"}}],
        ["track", {"userId": "u1", "event": "Order Completed", "messageId": "node-v2-invalid", "context": v2,
                   "properties": {"order_id": "o3", "revenue": 9.5}}],
        ["track", {"userId": "u1", "event": "Order Shipped", "messageId": "node-unplanned"}],
        ["identify", {"userId": "u1", "messageId": "node-identify", "traits": {"email": "a@b.co"}}],
        ["group", {"userId": "u1", "groupId": "g1", "messageId": "node-group", "traits": {"name": "Acme"}}],
        ["page", {"userId": "u1", "name": "Home", "messageId": "node-page", "properties": {"path": "/"}}],
        ["screen", {"userId": "u1", "name": "Home", "messageId": "node-screen"}],
    ]
    with serve(make_registry(segment.url, TRACKING_PLAN_SCHEMAS, REGISTRY_WRITE_KEYS=CLIENT_KEY)) as url:
        assert send(node_sdk, url, "/v1/batch", calls) == []
    assert_judged_by_name(segment, "node")
