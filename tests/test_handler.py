"""The whole pipeline, event in and response out, against the example schemas and a fake Segment."""

from __future__ import annotations

import json

import pytest

from helpers import (CLIENT_KEY, INVALID_KEY, IOS_INVALID_KEY, IOS_KEY, IOS_VALID_KEY, JUDGED_BY_SOURCE, OWN_PLANS_AND_CONTROLS,
                     SERVER_KEY, SHARED_INVALID_KEY, TEST_EVENT, THREE_SOURCES, VALID_KEY, WEB_KEY, api_event, both_projects, config_file,
                     foreign_hosts, judged_by_source, load_captures, make_registry, response_json, sources_registry, track,
                     tune_retries, unusable_folder)
from reflekt_registry.retry import RetryPolicy
from reflekt_registry.local.server import to_api_gateway_event

OK = {"success": True}


@pytest.fixture
def registry(segment):
    return make_registry(segment.url)


def send(registry, events, **kwargs):
    return registry.handle(api_event({"batch": events, "sentAt": "2026-11-26T18:00:00.000Z"}, **kwargs))


class TestOriginalProbeTable:
    """Every input that broke the original registry (seed-and-reflekt.md §1.9) now has a correct outcome."""

    def test_1_valid_track_keeps_its_identity(self, registry, segment):
        event = track(test_property="x", message_id="m-1")
        event["context"] = {"library": {"name": "analytics-python", "version": "2.4.0"}}
        event["timestamp"] = "2026-11-26T18:00:00.000+00:00"
        assert response_json(send(registry, [event])) == OK
        [forwarded] = segment.events(VALID_KEY)
        assert forwarded["messageId"] == "m-1"
        assert forwarded["context"]["library"] == {"name": "analytics-python", "version": "2.4.0"}
        assert forwarded["timestamp"] == "2026-11-26T18:00:00.000+00:00"
        assert segment.received[0].body["sentAt"] == "2026-11-26T18:00:00.000Z"

    def test_2_extra_property_is_invalid_with_reason(self, registry, segment):
        send(registry, [track(test_property="x", extra=1)])
        [forwarded] = segment.events(INVALID_KEY)
        assert forwarded["properties"]["validation_errors"] == ["$.properties must not contain {'extra'} properties"]

    def test_3_first_event_without_schema_id(self, registry, segment):
        response = send(registry, [track(schema_id=None, test_property="x"), track(test_property="y")])
        assert response["statusCode"] == 200
        [invalid] = segment.events(INVALID_KEY)
        assert invalid["context"]["reflekt"]["violations"][0]["keyword"] == "required"
        assert len(segment.events(VALID_KEY)) == 1

    def test_4_unknown_schema_is_invalid_not_500(self, registry, segment):
        response = send(registry, [track(schema_id="segment/demo/Nope/1-0.json", test_property="x")])
        assert response["statusCode"] == 200
        [invalid] = segment.events(INVALID_KEY)
        assert "no schema with $id 'segment/demo/Nope/1-0.json'" in invalid["properties"]["validation_errors"][0]

    def test_5_identify_validates_traits(self, registry, segment):
        good = {"type": "identify", "userId": "u1", "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": "a@b.co"}}
        bad = {"type": "identify", "userId": "u1", "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": "nope"}}
        send(registry, [good, bad])
        assert [e["traits"]["email"] for e in segment.events(VALID_KEY)] == ["a@b.co"]
        [invalid] = segment.events(INVALID_KEY)
        assert invalid["context"]["reflekt"]["violations"][0]["path"] == "$.traits.email"

    def test_6_track_without_timestamp(self, registry, segment):
        assert send(registry, [track(test_property="x")])["statusCode"] == 200
        assert "timestamp" not in segment.events(VALID_KEY)[0]  # Segment stamps it on receipt

    def test_7_write_key_not_allowed(self, segment):
        registry = make_registry(segment.url, REGISTRY_WRITE_KEYS="good-key")
        response = send(registry, [track(test_property="x")], write_key="bad-key")
        assert response["statusCode"] == 401
        assert segment.received == []

    def test_8_page_with_properties(self, registry, segment):
        page = {"type": "page", "name": "Home", "userId": "u1", "properties": {"schema_id": "jaffle_shop/Page_Viewed/1-0.json", "path": "/"}}
        send(registry, [page])
        assert segment.events(VALID_KEY)[0]["name"] == "Home"

    def test_9_valid_then_missing_schema_id_is_annotated(self, registry, segment):
        send(registry, [track(test_property="x"), track(schema_id=None)])
        [invalid] = segment.events(INVALID_KEY)
        # Found by its name, Test Event's schema (which declares schema_id, as the original registry's did) judges it.
        assert invalid["properties"]["validation_errors"] == ["$.properties must contain ['schema_id', 'test_property'] properties"]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "alias", "previousId": "a1", "userId": "u1"},
        {"type": "identify", "userId": "u1"},
        {"type": "group", "userId": "u1", "groupId": "g1"},
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"schema_id": "jaffle_shop/Group/1-0.json", "name": "Acme"}},
        {"type": "screen", "userId": "u1", "name": "Home", "properties": {"schema_id": "jaffle_shop/Screen_Viewed/1-0.json", "name": "Home"}},
    ],
    ids=["alias", "identify-without-traits", "group-without-traits", "group", "screen"],
)
def test_every_call_type_reaches_the_valid_source_unannotated(registry, segment, event):
    send(registry, [dict(event)])
    [forwarded] = segment.events(VALID_KEY)
    assert forwarded["type"] == event["type"]
    assert "reflekt" not in forwarded["context"]


def test_invalid_event_carries_every_violation(registry, segment):
    order = {"schema_id": "jaffle_shop/Order_Completed/1-0.json", "order_id": 7, "revenue": -1, "currency": "JPY",
             "products": [{"product_id": "p", "price": "free", "quantity": 0}]}
    send(registry, [{"type": "track", "event": "Order Completed", "userId": "u1", "properties": order}])
    [invalid] = segment.events(INVALID_KEY)
    paths = {v["path"]: v["keyword"] for v in invalid["context"]["reflekt"]["violations"]}
    assert paths == {
        "$.properties.order_id": "type",
        "$.properties.revenue": "minimum",
        "$.properties.currency": "enum",
        "$.properties.products[0].price": "type",
        "$.properties.products[0].quantity": "minimum",
    }
    assert invalid["context"]["reflekt"]["schemaId"] == "jaffle_shop/Order_Completed/1-0.json"
    assert len(invalid["properties"]["validation_errors"]) == 5


def test_batch_context_and_integrations_merge_into_each_event(registry, segment):
    body = {"batch": [track(test_property="x") | {"context": {"locale": "en"}}], "context": {"locale": "fr", "app": {"name": "shop"}},
            "integrations": {"All": False}}
    registry.handle(api_event(body))
    [forwarded] = segment.events(VALID_KEY)
    assert forwarded["context"]["app"] == {"name": "shop"}
    assert forwarded["context"]["locale"] == "en"  # the event's own value wins
    assert forwarded["integrations"] == {"All": False}


def test_context_ip_comes_from_the_caller_and_inbound_key_never_leaks(registry, segment):
    event = track(test_property="x") | {"writeKey": CLIENT_KEY}
    send(registry, [event, track(test_property="y") | {"context": {"ip": "198.51.100.1"}}])
    first, second = segment.events(VALID_KEY)
    assert first["context"]["ip"] == "203.0.113.9"
    assert second["context"]["ip"] == "198.51.100.1"
    assert "writeKey" not in first
    assert CLIENT_KEY not in json.dumps([r.body for r in segment.received]) + json.dumps([r.headers for r in segment.received])


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/prod/v1/batch", "/api/validate/segment/v1/b/"])
def test_batch_paths_under_any_prefix(registry, segment, path):
    assert send(registry, [track(test_property="x")], path=path)["statusCode"] == 200
    assert len(segment.events(VALID_KEY)) == 1


@pytest.mark.parametrize("path,call_type", [("/v1/t", "track"), ("/v1/track", "track"), ("/stage/v1/p", "page"),
                                            ("/v1/identify", "identify"), ("/v1/a", "alias"), ("/v1/s", "screen"), ("/v1/g", "group")])
def test_single_call_paths_take_the_type_from_the_path(registry, segment, path, call_type):
    event = {"userId": "u1", "previousId": "p", "groupId": "g", "sentAt": "2026-11-26T18:00:00.000Z"}
    if call_type in ("track", "page", "screen"):
        event["event"] = "Test Event"
        event["properties"] = {"schema_id": TEST_EVENT, "test_property": "x"} if call_type == "track" else {}
    assert registry.handle(api_event(event, path=path))["statusCode"] == 200
    [forwarded] = segment.events(VALID_KEY) + segment.events(INVALID_KEY)
    assert forwarded["type"] == call_type
    assert segment.received[0].body["sentAt"] == "2026-11-26T18:00:00.000Z"


def test_metrics_are_answered_and_not_forwarded(registry, segment):
    response = registry.handle(api_event({"series": [{"type": "Counter", "metric": "x", "value": 1}]}, path="/v1/m", write_key=None))
    assert response_json(response) == OK
    assert segment.received == []


def test_preflight_allows_what_analytics_js_sends(registry):
    response = registry.handle(api_event(method="OPTIONS", path="/v1/t", headers={"origin": "https://shop.example.com"}))
    assert response["statusCode"] == 204
    assert response["headers"]["access-control-allow-origin"] == "https://shop.example.com"
    assert "authorization" in response["headers"]["access-control-allow-headers"]
    assert "x-retry-count" in response["headers"]["access-control-allow-headers"]


def test_settings_point_sdks_back_at_the_registry(registry):
    response = registry.handle(api_event(method="GET", path="/prod/v1/projects/wk-1/settings", write_key=None))
    segment_io = response_json(response)["integrations"]["Segment.io"]
    assert segment_io["apiHost"] == "abc123.execute-api.eu-west-1.amazonaws.com/prod/v1"
    assert segment_io["apiKey"] == "wk-1"
    assert response["headers"]["access-control-allow-origin"] == "*"


def test_settings_on_a_custom_domain_name_that_domain(registry):
    """API Gateway puts a custom domain in requestContext.domainName: the document names it, and no other host."""
    event = api_event(method="GET", path="/v1/projects/wk-1/settings", write_key=None,
                      headers={"host": "events.example.com", "x-forwarded-proto": "https"})
    event["requestContext"]["domainName"] = "events.example.com"
    document = response_json(registry.handle(event))
    assert document["integrations"]["Segment.io"]["apiHost"] == "events.example.com/v1"
    assert foreign_hosts(document) == []


def test_settings_refuse_a_key_not_on_the_allowlist(segment):
    registry = make_registry(segment.url, REGISTRY_WRITE_KEYS="good-key")
    response = registry.handle(api_event(method="GET", path="/v1/projects/other/settings", write_key=None))
    assert response["statusCode"] == 401


@pytest.mark.parametrize("capture", load_captures("analytics-python-2.4.0.json") + load_captures("analytics-node-3.1.0.json")
                         + load_captures("analytics-next-1.84.3.json")[1:] + load_captures("synthesized.json"),
                         ids=lambda c: f"{c['sdk']} {c['path']}")
def test_captured_sdk_requests_are_accepted_and_routed(registry, segment, capture):
    """What real SDKs sent (their events name no schema, so all are routed, annotated, to the invalid source)."""
    body = capture["body"].encode()
    headers = dict(capture["headers"])
    if headers.get("content-encoding") == "gzip":
        import gzip
        body = gzip.compress(body)
    path = "/v1/batch" if capture["path"] == "/custom/batch" else capture["path"]
    event = to_api_gateway_event(capture["method"], path, headers, body, "198.51.100.7")
    response = registry.handle(event)
    assert response["statusCode"] == 200, response["body"]
    sent = json.loads(capture["body"])
    expected = sent.get("batch", [sent])
    forwarded = {e["messageId"]: e for e in segment.events(VALID_KEY) + segment.events(INVALID_KEY)}
    assert sorted(forwarded) == sorted(e["messageId"] for e in expected)
    for original in expected:
        out = forwarded[original["messageId"]]
        for kept in ("type", "timestamp", "userId", "anonymousId", "integrations", "event", "name", "_metadata"):
            assert out.get(kept) == original.get(kept)
        for data in ("properties", "traits"):
            annotated = dict(out.get(data) or {})
            annotated.pop("validation_errors", None)
            assert annotated == (original.get(data) or {})


def test_browser_settings_capture_is_served(registry):
    capture = load_captures("analytics-next-1.84.3.json")[0]
    event = to_api_gateway_event(capture["method"], capture["path"], {"host": "registry.example.com"}, b"", "198.51.100.7")
    document = response_json(registry.handle(event))
    assert document["integrations"]["Segment.io"]["apiHost"] == "registry.example.com/v1"
    assert document["integrations"]["Segment.io"]["apiKey"] == "WK_BROWSER"


@pytest.mark.parametrize("body,status,error", [
    (b"not json", 400, "not valid JSON"),
    ([1, 2], 400, "expected an object"),
    ({"batch": "x"}, 400, "expected an array"),
    ({"batch": [1]}, 400, "batch[0] is a JSON number"),
    ({"batch": [{"type": "boom"}]}, 400, "batch[0].type is 'boom'"),
])
def test_unreadable_requests_get_400_with_a_clear_error(registry, segment, body, status, error):
    response = registry.handle(api_event(body))
    assert response["statusCode"] == status
    assert error in response_json(response)["message"]
    assert segment.received == []


def test_missing_write_key_is_401(registry):
    response = send(registry, [track(test_property="x")], write_key=None)
    assert response["statusCode"] == 401
    assert "no write key" in response_json(response)["message"]


def test_segment_down_spools_the_events_and_answers_200(segment, tmp_path):
    registry = make_registry(segment.url, SPOOL_DIR=str(tmp_path))
    segment.fail(times=10, status=500)
    tune_retries(registry, sleep=lambda seconds: None)
    response = send(registry, [track(test_property="x", message_id="kept")])
    assert response["statusCode"] == 200
    assert segment.received == []
    [spooled] = tmp_path.glob("*.jsonl")
    assert b'"messageId":"kept"' in spooled.read_bytes()


def test_segment_and_the_spool_down_answers_503_so_the_sdk_retries(segment, tmp_path):
    registry = make_registry(segment.url, SPOOL_DIR=unusable_folder(tmp_path))
    segment.fail(times=10, status=500)
    tune_retries(registry, sleep=lambda seconds: None)
    response = send(registry, [track(test_property="x")])
    assert response["statusCode"] == 503
    assert segment.received == []


def test_a_retry_after_from_segment_is_passed_to_the_client(segment, tmp_path):
    registry = make_registry(segment.url, SPOOL_DIR=unusable_folder(tmp_path))
    tune_retries(registry, RetryPolicy(budget=0.5))
    segment.fail(times=10, status=429, retry_after="30")
    response = send(registry, [track(test_property="x")])
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == "30"


def test_oversized_event_reaches_the_invalid_source_as_a_small_stand_in(registry, segment):
    big = track(test_property="x" * 40_000, message_id="big-1")
    send(registry, [big, track(test_property="small")])
    [stand_in] = segment.events(INVALID_KEY)
    assert stand_in["messageId"] == "big-1"
    assert stand_in["context"]["reflekt"]["violations"][0]["keyword"] == "maxSize"
    assert len(segment.events(VALID_KEY)) == 1


def test_large_request_is_split_into_batches_segment_accepts(registry, segment):
    events = [track(test_property="x" * 100, message_id=f"m-{i}") for i in range(3000)]
    assert send(registry, events)["statusCode"] == 200
    assert sorted(segment.message_ids(VALID_KEY)) == sorted(f"m-{i}" for i in range(3000))
    assert len(segment.received) >= 2


class TestSources:
    """Three apps, three write keys, one registry: each source's events reach its own destinations only."""

    @pytest.fixture
    def three(self, tmp_path, segment):
        return sources_registry(tmp_path, segment.url)

    def test_each_source_lands_in_its_own_segment_sources(self, three, segment):
        """web passes its key through, iOS has its valid key, server shares the invalid key with web."""
        for key, prefix in ((WEB_KEY, "web"), (IOS_KEY, "ios"), (SERVER_KEY, "server")):
            response = send(three, [track(test_property="ok", message_id=f"{prefix}-valid"),
                                    track(test_property=1, message_id=f"{prefix}-invalid")], write_key=key)
            assert response_json(response) == OK
        assert {key: sorted(segment.message_ids(key)) for key in segment.by_key()} == {
            WEB_KEY: ["web-valid"],
            IOS_VALID_KEY: ["ios-valid"],
            SERVER_KEY: ["server-valid"],
            IOS_INVALID_KEY: ["ios-invalid"],
            SHARED_INVALID_KEY: ["server-invalid", "web-invalid"],
        }

    def test_each_source_is_judged_by_its_own_plan_and_controls(self, tmp_path, segment):
        registry = sources_registry(tmp_path, segment.url, OWN_PLANS_AND_CONTROLS,
                                    SCHEMA_DIR=str(both_projects(tmp_path / "schemas")))
        for key, prefix in ((WEB_KEY, "web"), (IOS_KEY, "ios"), (SERVER_KEY, "server")):
            assert response_json(send(registry, judged_by_source(prefix), write_key=key)) == OK
        assert {key: sorted(segment.message_ids(key)) for key in segment.by_key()} == JUDGED_BY_SOURCE
        allowed = {event["messageId"]: event["context"]["reflekt"] for event in segment.events(IOS_VALID_KEY)}
        assert allowed["ios-bad"]["allowed"] is True and allowed["ios-named"]["schemaId"] == "acme/Order_Completed/1-1.json"
        ambiguous = {event["messageId"]: event["context"]["reflekt"] for event in segment.events(SHARED_INVALID_KEY)}
        assert [v["keyword"] for v in ambiguous["server-named"]["violations"]] == ["ambiguous"]

    def test_a_request_with_keys_of_two_sources_is_refused_and_forwards_nothing(self, three, segment):
        event = {**track(test_property="ok"), "writeKey": IOS_KEY}
        response = send(three, [event], write_key=WEB_KEY)
        assert response["statusCode"] == 401
        assert response_json(response)["message"] == ("the request presents write keys of 2 sources (ios, web); "
                                                      "send one source's keys per request")
        assert segment.received == []

    def test_a_key_in_no_source_is_refused(self, three, segment):
        response = send(three, [track(test_property="ok")], write_key=CLIENT_KEY)
        assert (response["statusCode"], segment.received) == (401, [])

    def test_keys_in_no_source_are_judged_as_the_default_source(self, tmp_path, segment):
        registry = sources_registry(tmp_path, segment.url, {**THREE_SOURCES, "default_source": "ios"})
        assert response_json(send(registry, [track(test_property="ok", message_id="m-1")], write_key="stranger")) == OK
        assert segment.message_ids(IOS_VALID_KEY) == ["m-1"]

    def test_pass_through_keeps_each_events_own_key(self, tmp_path, segment):
        """A batch whose events carry two keys of one pass-through source: each goes on under its own key."""
        document = {"version": 1, "invalid_write_key": SHARED_INVALID_KEY,
                    "sources": {"web": {"write_keys": [WEB_KEY, "web-staging-key"]}}}
        registry = sources_registry(tmp_path, segment.url, document)
        events = [track(test_property="ok", message_id="m-header"),
                  {**track(test_property="ok", message_id="m-own"), "writeKey": "web-staging-key"},
                  {**track(test_property=1, message_id="m-bad"), "writeKey": "web-staging-key"}]
        assert response_json(send(registry, events, write_key=WEB_KEY)) == OK
        assert segment.message_ids(WEB_KEY) == ["m-header"]
        assert segment.message_ids("web-staging-key") == ["m-own"]
        assert segment.message_ids(SHARED_INVALID_KEY) == ["m-bad"]
        assert all("writeKey" not in event for request in segment.received for event in request.events)

    def test_the_settings_route_takes_any_sources_key(self, three):
        for key in (WEB_KEY, IOS_KEY):
            assert three.handle(api_event(method="GET", path=f"/v1/projects/{key}/settings"))["statusCode"] == 200
        assert three.handle(api_event(method="GET", path="/v1/projects/stranger/settings"))["statusCode"] == 401

    def test_locally_without_segment_each_source_has_its_own_files(self, tmp_path):
        registry = sources_registry(tmp_path)
        for key, prefix in ((WEB_KEY, "web"), (IOS_KEY, "ios")):
            send(registry, [track(test_property="ok", message_id=f"{prefix}-valid"),
                            track(test_property=1, message_id=f"{prefix}-invalid")], write_key=key)
        files = {path.relative_to(tmp_path / "events").as_posix(): [json.loads(line)["messageId"] for line in path.read_text().splitlines()]
                 for path in sorted((tmp_path / "events").rglob("*.jsonl"))}
        assert files == {"ios/invalid.jsonl": ["ios-invalid"], "ios/valid.jsonl": ["ios-valid"],
                         "web/invalid.jsonl": ["web-invalid"], "web/valid.jsonl": ["web-valid"]}


def test_the_registry_judges_every_event_under_its_policy(segment, tmp_path):
    """The handler hands the source's Policy to every verdict: here unplanned events and allowed violations reach the
    valid source, annotated, and the plan chooses among same-named schemas."""
    document = {"version": 1, "plans": ["jaffle_shop/"], "controls": {"unplanned_events": "allow", "violations": "allow"}}
    registry = make_registry(segment.url, REGISTRY_CONFIG=str(config_file(tmp_path, document)))
    identify = {"type": "identify", "userId": "u1", "messageId": "i", "traits": {"email": "nope"}}
    unplanned = {"type": "track", "event": "Not Planned", "userId": "u1", "messageId": "u", "properties": {}}
    assert response_json(send(registry, [identify, unplanned])) == OK
    forwarded = {event["messageId"]: event["context"]["reflekt"] for event in segment.events(VALID_KEY)}
    assert forwarded["u"] == {"schemaId": None, "violations": [], "unplanned": True}
    assert forwarded["i"]["schemaId"] == "jaffle_shop/Identify/1-0.json" and forwarded["i"]["allowed"] is True
    assert segment.events(INVALID_KEY) == []
