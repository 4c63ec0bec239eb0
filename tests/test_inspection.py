"""The local server's inspection API, over real HTTP, as an app team's CI would call it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from helpers import (IOS_KEY, TEST_EVENT, TRACKING_PLAN_SCHEMAS, VALID_KEY, WEB_KEY, basic, config_file, make_registry,
                     sources_registry, track)
from local_support import call, get, send, serve
from reflekt_registry.document import ENVIRONMENT_SOURCE
from reflekt_registry.forwarder import MAX_EVENT_BYTES
from reflekt_registry.local.inspection import RecentEvents

IDENTIFY = "jaffle_shop/Identify/1-0.json"
ORDER = "jaffle_shop/Order_Completed/1-0.json"


@pytest.fixture
def url(tmp_path):
    """The local server as `./dev serve` runs it: example schemas, events to JSONL files."""
    with serve(make_registry(EVENTS_DIR=str(tmp_path))) as base_url:
        yield base_url


def identify(message_id: str) -> dict:
    return {"type": "identify", "userId": "u1", "messageId": message_id, "traits": {"schema_id": IDENTIFY, "email": "a@b.co"}}


def order(message_id: str) -> dict:
    return {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": message_id,
            "properties": {"schema_id": ORDER, "order_id": "o1", "revenue": -1, "currency": "EUR",
                           "products": [{"product_id": "p1", "price": 1, "quantity": 1}]}}


def alias(message_id: str) -> dict:
    return {"type": "alias", "userId": "u1", "previousId": "anon", "messageId": message_id}


def message_ids(url: str, query: str = "") -> list[str]:
    return [seen["message_id"] for seen in get(url, "/registry/events" + query)["events"]]


def test_an_invalid_event_is_listed_with_its_outcome_violations_and_payload(url):
    """Each record carries what CI asserts on, and the event exactly as the invalid source received it."""
    assert send(url, track(test_property="ok", message_id="m-valid"), track(test_property=3, message_id="m-invalid")) == 200
    [seen] = get(url, "/registry/events?status=invalid")["events"]
    assert set(seen) == {"id", "forwarded_at", "status", "source", "type", "event", "schema_id", "message_id",
                         "violations", "payload", "plan", "unplanned", "omitted"}
    assert {name: seen[name] for name in ("status", "source", "type", "event", "schema_id", "message_id", "violations")} == {
        "status": "invalid", "source": ENVIRONMENT_SOURCE, "type": "track", "event": "Test Event", "schema_id": TEST_EVENT, "message_id": "m-invalid",
        "violations": [{"path": "$.properties.test_property", "keyword": "type", "message": "$.properties.test_property must be string"}],
    }
    assert seen["payload"]["properties"]["validation_errors"] == ["$.properties.test_property must be string"]
    assert seen["forwarded_at"].endswith("Z")


def test_events_are_listed_newest_first(url):
    """Requests are listed in reverse order of arrival; limit keeps the newest."""
    for message_id in ("m1", "m2", "m3"):
        send(url, track(test_property="x", message_id=message_id))
    assert message_ids(url) == ["m3", "m2", "m1"]
    assert message_ids(url, "?limit=2") == ["m3", "m2"]


def test_summary_counts_per_schema_and_status(url):
    """The whole summary in one assertion, events without a schema under "(none)"."""
    send(url, track(test_property="x"), track(test_property=3), identify("i1"), order("o1"), alias("a1"))
    schemas = {
        "(none)": {"valid": 1, "invalid": 0},
        IDENTIFY: {"valid": 1, "invalid": 0},
        ORDER: {"valid": 0, "invalid": 1},
        TEST_EVENT: {"valid": 1, "invalid": 1},
    }
    assert get(url, "/registry/summary") == {
        "total": 5, "valid": 3, "invalid": 2, "schemas": schemas,
        "sources": {ENVIRONMENT_SOURCE: {"valid": 3, "invalid": 2, "schemas": schemas}},
    }


def test_an_identify_with_its_traits_in_context_is_listed_under_its_schema(url):
    """Some SDKs send identify traits in context.traits; the registry judges them there, so the page lists them so."""
    event = identify("i1")
    event["context"] = {"traits": event.pop("traits")}
    send(url, event)
    [seen] = get(url, "/registry/events")["events"]
    assert (seen["status"], seen["schema_id"], seen["plan"]) == ("valid", IDENTIFY, "jaffle_shop/")


@pytest.mark.parametrize(("query", "expected"), [
    ("status=valid", ["a1", "i1", "t-valid"]),
    ("status=invalid", ["o1", "t-invalid"]),
    (f"schema_id={quote(IDENTIFY)}", ["i1"]),
    ("schema_id=(none)", ["a1"]),
    (f"event={quote('Order Completed')}", ["o1"]),
    ("type=identify", ["i1"]),
    ("type=track&status=invalid", ["o1", "t-invalid"]),
    ("type=track&limit=1", ["o1"]),
    ("event=Nope", []),
    (f"source={quote(ENVIRONMENT_SOURCE)}", ["a1", "i1", "o1", "t-invalid", "t-valid"]),
    ("source=web", []),
])
def test_filters(url, query, expected):
    """Each filter narrows the list; filters combine with AND."""
    send(url, track(test_property="x", message_id="t-valid"), identify("i1"), alias("a1"))
    send(url, track(test_property=3, message_id="t-invalid"), order("o1"))
    assert sorted(message_ids(url, "?" + query)) == sorted(expected)
    if "limit" in query:
        assert message_ids(url, "?" + query) == expected


def test_reset_forgets_events_and_counts_but_never_reuses_an_id(url):
    """POST reset answers the emptied summary; a later event gets a new id, so a page cannot confuse it."""
    send(url, track(test_property="x"))
    [before] = get(url, "/registry/events")["events"]
    status, _, body = call(url + "/registry/reset", "POST")
    assert (status, body) == (200, {"total": 0, "valid": 0, "invalid": 0, "schemas": {}, "sources": {}})
    assert get(url, "/registry/events") == {"events": []}
    send(url, track(test_property="x"))
    [after] = get(url, "/registry/events")["events"]
    assert after["id"] > before["id"]


@pytest.mark.parametrize(("method", "path", "status", "says"), [
    ("GET", "/registry/nope", 404, "use one of GET /registry/, GET /registry/events, GET /registry/summary, POST /registry/reset"),
    ("POST", "/registry/events", 405, "use GET"),
    ("GET", "/registry/reset", 405, "use POST"),
    ("GET", "/registry/events?status=bogus", 400, "expected valid or invalid"),
    ("GET", "/registry/events?limit=0", 400, "positive whole number"),
    ("GET", "/registry/events?limit=%C2%B2", 400, "positive whole number"),
    ("GET", "/registry/events?schema=x", 400, "unknown filter 'schema'"),
])
def test_a_mistaken_request_is_answered_with_what_to_do_instead(url, method, path, status, says):
    """A typo in a CI script fails loudly rather than matching nothing, in the registry's error shape."""
    got, _, body = call(url + path, method)
    assert got == status
    assert body["success"] is False and says in body["message"]


def test_a_segment_path_behind_a_registry_prefix_still_reaches_the_registry(url):
    """Only /registry/<name> is the inspection API; /registry/v1/batch is a batch under a stage prefix."""
    assert send(url, track(test_property="x", message_id="staged"), path="/registry/v1/batch") == 200
    assert message_ids(url) == ["staged"]


def test_browser_test_runners_on_another_origin_may_read_the_api(url):
    """Like the Segment routes, inspection answers carry CORS headers for the calling origin."""
    _, headers, _ = call(url + "/registry/summary", headers={"Origin": "http://localhost:3000"})
    assert headers["access-control-allow-origin"] == "http://localhost:3000"


@pytest.mark.parametrize("path", ["/registry/", "/registry"])
def test_the_page_is_served_as_html(url, path):
    """The page needs nothing but this server."""
    status, headers, body = call(url + path)
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert "<title>reflekt-registry: local events</title>" in body


def test_an_oversized_event_is_listed_as_the_stand_in_segment_received(url):
    """The list shows what was forwarded: a valid event over 32 KB went to the invalid source, shrunk."""
    send(url, track(test_property="x" * MAX_EVENT_BYTES, message_id="big"))
    [seen] = get(url, "/registry/events")["events"]
    assert (seen["status"], seen["message_id"], seen["violations"][0]["keyword"]) == ("invalid", "big", "maxSize")
    assert "test_property" not in seen["payload"]["properties"]


def test_events_are_listed_once_segment_accepted_them(segment):
    """A batch Segment refused is not listed; the SDK's retry that succeeds is, once."""
    with serve(make_registry(segment.url)) as url:
        segment.fail(times=1, status=400)
        assert send(url, track(test_property="x", message_id="m1")) == 503
        assert message_ids(url) == []
        assert send(url, track(test_property="x", message_id="m1")) == 200
        assert message_ids(url) == ["m1"]
    assert segment.message_ids(VALID_KEY) == ["m1"]


def test_the_store_keeps_the_latest_events_and_counts_them_all():
    """The list is bounded; the summary still counts every event since the start."""
    recent = RecentEvents(capacity=2)
    recent.add("valid", "web", [track(message_id=f"m{i}") for i in range(3)])
    assert [seen.message_id for seen in recent.matching()] == ["m2", "m1"]
    assert recent.summary()["schemas"] == {TEST_EVENT: {"valid": 3, "invalid": 0}}


def test_events_and_summary_are_grouped_by_source(tmp_path):
    """With sources, each record names its source; the summary counts per source; source= filters."""
    with serve(sources_registry(tmp_path)) as url:
        for key, message_id, value in ((WEB_KEY, "w1", "x"), (IOS_KEY, "i1", 1), (IOS_KEY, "i2", "y")):
            status, _, _ = call(url + "/v1/batch", "POST", {"batch": [track(test_property=value, message_id=message_id)]},
                                {"Authorization": basic(key)})
            assert status == 200
        summary = get(url, "/registry/summary")
        assert {name: (counts["valid"], counts["invalid"]) for name, counts in summary["sources"].items()} == {
            "ios": (1, 1), "web": (1, 0)}
        assert summary["sources"]["ios"]["schemas"] == {TEST_EVENT: {"valid": 1, "invalid": 1}}
        assert sorted(message_ids(url, "?source=ios")) == ["i1", "i2"]
        assert [seen["source"] for seen in get(url, "/registry/events?status=invalid")["events"]] == ["ios"]


@pytest.fixture
def plan_url(tmp_path):
    """The local server over the example tracking plan, letting unplanned events and omitting unplanned properties."""
    document = {"version": 1, "plans": ["acme/"], "controls": {"unplanned_events": "allow", "unplanned_properties": "omit"}}
    registry = make_registry(schema_dir=TRACKING_PLAN_SCHEMAS, EVENTS_DIR=str(tmp_path),
                             REGISTRY_CONFIG=str(config_file(tmp_path, document)))
    with serve(registry) as base_url:
        yield base_url


def test_events_judged_by_name_show_their_plan_and_what_was_unplanned_or_omitted(plan_url):
    send(plan_url, {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "o1",
                    "properties": {"order_id": "o1", "revenue": 1, "secret": "s"}},
         {"type": "track", "event": "Order Shipped", "userId": "u1", "messageId": "s1", "properties": {}},
         alias("a1"))
    seen = {event["message_id"]: event for event in get(plan_url, "/registry/events")["events"]}
    assert (seen["o1"]["plan"], seen["o1"]["omitted"], seen["o1"]["unplanned"]) == ("acme/", ["secret"], False)
    assert (seen["s1"]["status"], seen["s1"]["unplanned"], seen["s1"]["plan"]) == ("valid", True, None)
    assert message_ids(plan_url, "?plan=acme/") == ["o1"]
    assert message_ids(plan_url, "?schema_id=(unplanned)") == ["s1"]
    assert get(plan_url, "/registry/summary")["schemas"]["(unplanned)"] == {"valid": 1, "invalid": 0}
