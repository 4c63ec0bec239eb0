"""Hostile input: each request gets the status it deserves, nothing it should not carry reaches a source, and the
process lives on to answer the next one. Also what schema content can and cannot make the registry do."""

from __future__ import annotations

import base64
import gzip
import json
import resource
import shutil
import socket
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.delivery import Ledger, check
from helpers import (CLIENT_KEY, EXAMPLE_SCHEMAS, INVALID_KEY, IOS_INVALID_KEY, IOS_KEY, IOS_VALID_KEY, REPO, SERVER_KEY,
                     SHARED_INVALID_KEY, TEST_EVENT, THREE_SOURCES, TRACKING_PLAN_SCHEMAS, VALID_KEY, WEB_KEY, api_event,
                     basic, make_registry, response_json, track, tune_retries)
from local_support import serve
from fakes.outlets import MemoryOutlets
from reflekt_registry.controls import Policy
from reflekt_registry.document import ENVIRONMENT_SOURCE, Environment, Source, from_environment, parse
from reflekt_registry.errors import ConfigError
from reflekt_registry.document_store import Configuration, Fixed
from reflekt_registry.forwarder import Forwarder
from reflekt_registry.handler import Registry
from reflekt_registry.tools.publish import find_schemas
from reflekt_registry.tools.publish import main as publish
from reflekt_registry.request import MAX_BODY_BYTES, MAX_ENCODED_BODY_BYTES
from reflekt_registry.patterns import dangerous_patterns
from reflekt_registry.schemas import CompiledSchema, DirectorySource, SchemaStore, compile_schema
from reflekt_registry.validator import Validator

# What a client may be answered where the schemas and destinations never fail (memory_registry): a 500 would mean an
# input reached a bug, and a 503 that the registry blamed its own dependencies for what the input did.
ALLOWED_STATUSES = frozenset({200, 204, 400, 401, 404, 405})
SECOND_KEY = "second-key"
MISSING = object()  # a field left out of an event, as opposed to present with a wrong value


class RecordingSource(DirectorySource):
    """The example schemas, remembering every id the registry asked for."""

    def __init__(self, root: Path = EXAMPLE_SCHEMAS):
        super().__init__(root)
        self.asked: list[str] = []

    def fetch(self, schema_id: str, known_version: str | None) -> Any:
        self.asked.append(schema_id)
        return super().fetch(schema_id, known_version)


def memory_registry(source: Any = None) -> Registry:
    """The registry with an enforced allowlist, the example schemas and in-memory sources."""
    store = SchemaStore(source or DirectorySource(EXAMPLE_SCHEMAS), ttl=60)
    environment = Environment(Source(ENVIRONMENT_SOURCE, (CLIENT_KEY, SECOND_KEY), Policy(), VALID_KEY, INVALID_KEY),
                              forwarding=True, local=False)
    configuration = Fixed(Configuration.of(from_environment(environment)))
    return Registry(configuration, Validator(store), Forwarder(), MemoryOutlets())


def valid_events(registry: Registry) -> list[dict[str, Any]]:
    return registry.outlets.events(VALID_KEY)


def invalid_events(registry: Registry) -> list[dict[str, Any]]:
    return registry.outlets.events(INVALID_KEY)


def forwarded(registry: Registry) -> list[dict[str, Any]]:
    return valid_events(registry) + invalid_events(registry)


def raw(body: str | bytes | None, *, encoded: bool = False, **kwargs: Any) -> dict[str, Any]:
    """An API Gateway event carrying exactly this body, however wrong."""
    event = api_event(**kwargs)
    event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@cache
def gzip_bomb(inflated: int = 256 << 20) -> bytes:
    """`inflated` zero bytes, gzipped (~1,000:1), built a MiB at a time so the test itself stays small."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    return b"".join(deflater.compress(chunk) for _ in range(inflated >> 20)) + deflater.flush()


@pytest.fixture
def registry() -> Registry:
    return memory_registry()


def one_event_body() -> str:
    return json.dumps({"batch": [track(test_property="x", message_id="m-1")]})


# -- unreadable bodies --------------------------------------------------------------------------------------------

UNREADABLE: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    # malformed JSON
    "not-json": (lambda: raw("not json"), "not valid JSON"),
    "unclosed-object": (lambda: raw('{"batch": ['), "not valid JSON"),
    "bad-array": (lambda: raw('{"batch": [}'), "not valid JSON"),
    "single-quotes": (lambda: raw("{'batch': []}"), "not valid JSON"),
    "trailing-garbage": (lambda: raw('{"batch": []} x'), "not valid JSON"),
    "two-documents": (lambda: raw('{"batch": []}{"batch": []}'), "not valid JSON"),
    "nul-byte": (lambda: raw("\x00"), "not valid JSON"),
    # JSON that is not an object
    "array": (lambda: raw("[]"), "is a JSON array; expected an object"),
    "string": (lambda: raw('"batch"'), "is a JSON string"),
    "number": (lambda: raw("42"), "is a JSON number"),
    "null": (lambda: raw("null"), "is a JSON null"),
    "boolean": (lambda: raw("true"), "is a JSON boolean"),
    # empty
    "no-body": (lambda: raw(None), "body is empty"),
    "empty-string": (lambda: raw(""), "body is empty"),
    "whitespace": (lambda: raw(" \r\n\t "), "body is empty"),
    "empty-base64": (lambda: raw("", encoded=True), "body is empty"),
    "empty-gzip": (lambda: raw(b64(gzip.compress(b"")), encoded=True, headers={"content-encoding": "gzip"}), "body is empty"),
    # invalid UTF-8
    "invalid-byte": (lambda: raw(b64(b'{"batch": [{"type": "track", "event": "\xff"}]}'), encoded=True), "not valid UTF-8"),
    "overlong-slash": (lambda: raw(b64(b'{"batch": "\xc0\xaf"}'), encoded=True), "not valid UTF-8"),
    "truncated-sequence": (lambda: raw(b64(b'{"batch": "\xe2\x82"}'), encoded=True), "not valid UTF-8"),
    "gzipped-invalid-byte": (lambda: raw(b64(gzip.compress(b'{"batch": "\xff"}')), encoded=True), "not valid UTF-8"),
    # bad base64
    "base64-punctuation": (lambda: raw("!!!!", encoded=True), "not valid base64"),
    "base64-bad-padding": (lambda: raw("abc", encoded=True), "not valid base64"),
    "base64-newline": (lambda: raw(b64(one_event_body().encode()) + "\n", encoded=True), "not valid base64"),
    "base64-non-ascii": (lambda: raw("é" * 8, encoded=True), "not valid base64"),
    "plain-json-marked-base64": (lambda: raw(one_event_body(), encoded=True), "not valid base64"),
    # gzip that cannot or must not be inflated
    "gzip-bomb": (lambda: raw(b64(gzip_bomb()), encoded=True, headers={"content-encoding": "gzip"}), "inflates to more than"),
    "gzip-bomb-no-header": (lambda: raw(b64(gzip_bomb()), encoded=True), "inflates to more than"),
    "gzip-just-over-limit": (lambda: raw(b64(gzip.compress(b" " * (MAX_BODY_BYTES + 1))), encoded=True), "inflates to more than"),
    "gzip-truncated": (lambda: raw(b64(gzip.compress(one_event_body().encode())[:-12]), encoded=True), "truncated"),
    "gzip-corrupt": (lambda: raw(b64(b"\x1f\x8b\x08\x00" + b"\xff" * 40), encoded=True), "cannot be inflated"),
    "gzip-claimed-plain-sent": (lambda: raw(b64(one_event_body().encode()), encoded=True, headers={"content-encoding": "gzip"}),
                                "cannot be inflated"),
    "gzip-inside-gzip": (lambda: raw(b64(gzip.compress(gzip.compress(one_event_body().encode()))), encoded=True), "not valid"),
    # over the size limit
    "encoded-over-limit": (lambda: raw("A" * (MAX_ENCODED_BODY_BYTES + 1), encoded=True), "the limit is"),
    "plain-over-limit": (lambda: raw(" " * (MAX_BODY_BYTES + 1)), "the limit is"),
    "decoded-over-limit": (lambda: raw(b64(b" " * (MAX_BODY_BYTES + 1)), encoded=True), "the limit is"),
    # nested past what the parser takes
    "nested-arrays": (lambda: raw("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "nested-objects": (lambda: raw('{"a":' * 100_000 + "1" + "}" * 100_000), "nested too deeply"),
    "nested-in-a-batch": (lambda: raw('{"batch": [' + "[" * 100_000 + "]" * 100_000 + "]}"), "nested too deeply"),
    # huge arrays of the wrong thing
    "batch-of-half-a-million-zeros": (lambda: raw('{"batch": [' + ",".join(["0"] * 500_000) + "]}"), "batch[0] is a JSON number"),
    "batch-of-empty-objects": (lambda: raw('{"batch": [' + ",".join(["{}"] * 300_000) + "]}"), "batch[0].type is None"),
    "batch-is-a-string": (lambda: raw(json.dumps({"batch": "x" * 500_000})), "batch is a JSON string"),
}


@pytest.mark.parametrize("case", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_bodies_get_400_naming_the_problem(registry, case):
    """Malformed, non-object, empty, non-UTF-8, bad base64, gzip bombs, oversized and over-nested bodies: 400, nothing forwarded."""
    make, error = case
    response = registry.handle(make())
    assert response["statusCode"] == 400, response["body"]
    assert error in response_json(response)["message"]
    assert forwarded(registry) == []


def test_a_gzip_bomb_is_refused_after_inflating_at_most_the_limit(registry):
    """256 MiB of zeros in a 260 KB body: refused having held about one limit's worth, not the bomb."""
    event = raw(b64(gzip_bomb()), encoded=True, headers={"content-encoding": "gzip"})
    tracemalloc.start()
    try:
        response = registry.handle(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response["statusCode"] == 400
    assert peak < 8 * MAX_BODY_BYTES  # inflating it all would take 256 MiB


@pytest.mark.parametrize("encoding", ["plain", "base64", "gzip"])
def test_the_size_limit_is_exact(registry, encoding):
    """A body of exactly MAX_BODY_BYTES is accepted and one byte more is refused, however it is encoded."""
    body = one_event_body()
    at_limit = (body + " " * (MAX_BODY_BYTES - len(body))).encode()

    def event(data: bytes) -> dict[str, Any]:
        if encoding == "plain":
            return raw(data.decode())
        return raw(b64(gzip.compress(data) if encoding == "gzip" else data), encoded=True)

    assert registry.handle(event(at_limit))["statusCode"] == 200
    assert registry.handle(event(at_limit + b" "))["statusCode"] == 400
    assert [e["messageId"] for e in forwarded(registry)] == ["m-1"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/json; charset=latin-1", "image/png", "\x00"])
def test_any_content_type_is_read_as_json(registry, content_type):
    """SDKs disagree on Content-Type (browsers send text/plain), so a wrong or missing one is no reason to refuse."""
    event = api_event({"batch": [track(test_property="x", message_id="m-1")]})
    event["headers"].pop("content-type")
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    assert registry.handle(event)["statusCode"] == 200
    assert [e["messageId"] for e in valid_events(registry)] == ["m-1"]


NESTING_SITES = {  # where a nested value goes in an event, as (text in the event, the same text with the value added)
    "properties": ('"test_property": "x"', '"test_property": "x", "deep": {}'),
    "context": ('"userId": "u1"', '"userId": "u1", "context": {{"deep": {}}}'),
    "event": ('"type": "track"', '"type": "track", "deep": {}'),
}


@pytest.mark.parametrize("site", NESTING_SITES.values(), ids=NESTING_SITES.keys())
@pytest.mark.parametrize("depth", [50, 900, 5_000])
def test_nesting_the_parser_takes_is_judged_not_crashed_on(registry, site, depth):
    """Nesting up to what json takes (deeper on Python 3.13 than here) ends in 200 with the event forwarded, or 400."""
    marker, replacement = site
    text = json.dumps({"batch": [track(test_property="x", message_id="deep")]})
    response = registry.handle(raw(text.replace(marker, replacement.format("[" * depth + "]" * depth), 1)))
    assert response["statusCode"] in (200, 400), response["body"]
    if response["statusCode"] == 200:
        assert [e["messageId"] for e in forwarded(registry)] == ["deep"]


def test_an_array_too_big_for_segment_reaches_the_invalid_source_as_a_stand_in(registry):
    """A 200,000-element property makes the event too big for Segment: its stand-in, not the request, pays."""
    big = track(test_property="x", message_id="big") | {"context": {"library": {"name": "x"}}}
    big["properties"]["numbers"] = [0] * 200_000
    response = registry.handle(api_event({"batch": [big, track(test_property="y", message_id="small")]}))
    assert response["statusCode"] == 200
    assert [e["messageId"] for e in valid_events(registry)] == ["small"]
    [stand_in] = invalid_events(registry)
    assert stand_in["messageId"] == "big" and "numbers" not in stand_in["properties"]


def small_events(count: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """`count` events as small as an SDK sends, every fourth one invalid, and where each belongs."""
    events, expected = [], {}
    for i in range(count):
        message_id = f"m-{i}"
        if i % 4 == 3:
            events.append({"type": "track", "messageId": message_id, "properties": {}})
            expected[message_id] = INVALID_KEY
        else:
            events.append({"type": "identify", "userId": "u", "messageId": message_id})
            expected[message_id] = VALID_KEY
    return events, expected


def most_that_fit() -> int:
    """How many of `small_events` fit in one body at the size limit."""
    events, _ = small_events(30_000)
    size, count = len('{"batch":[]}') - 1, 0
    for event in events:
        size += len(json.dumps(event, separators=(",", ":"))) + 1
        if size > MAX_BODY_BYTES:
            return count
        count += 1
    raise AssertionError("events too small for the limit")


@pytest.mark.parametrize("count", [10_000, None], ids=["ten-thousand", "as-many-as-fit"])
def test_a_batch_of_many_events_reaches_segment_whole(segment, count):
    """10,000 events, and as many small ones as fit in the body limit, in one request: each arrives once, at its source."""
    events, expected = small_events(count or most_that_fit())
    body = json.dumps({"batch": events}, separators=(",", ":"))
    assert len(body) <= MAX_BODY_BYTES
    response = make_registry(segment.url).handle(raw(body))
    ledger = Ledger()
    ledger.record(expected.items(), response["statusCode"])
    assert response["statusCode"] == 200
    outcome = check(ledger, segment)
    assert (outcome.arrived, outcome.duplicates) == (len(events), 0)
    assert all(len(request.events) <= 2_500 for request in segment.received)


# -- events of every type with missing or wrongly typed fields ------------------------------------------------------

GOOD_EVENTS = {
    "track": {"type": "track", "event": "Test Event", "userId": "u1", "properties": {"schema_id": TEST_EVENT, "test_property": "x"}},
    "page": {"type": "page", "name": "Home", "userId": "u1", "properties": {"schema_id": "jaffle_shop/Page_Viewed/1-0.json", "path": "/"}},
    "screen": {"type": "screen", "name": "Home", "userId": "u1", "properties": {"schema_id": "jaffle_shop/Screen_Viewed/1-0.json", "name": "Home"}},
    "identify": {"type": "identify", "userId": "u1", "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": "a@b.co"}},
    "group": {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"schema_id": "jaffle_shop/Group/1-0.json", "name": "Acme"}},
    "alias": {"type": "alias", "userId": "u1", "previousId": "a1"},
}
PAYLOAD_FIELD = {"track": "properties", "page": "properties", "screen": "properties", "identify": "traits", "group": "traits"}
WRONG_VALUES = {"missing": MISSING, "null": None, "string": "x", "number": 7, "array": [1], "empty-object": {}, "boolean": True}
# Fields Segment defines but the registry leaves to Segment to judge: a wrong one never changes the route.
SEGMENT_FIELDS = ("userId", "anonymousId", "context", "integrations", "timestamp", "messageId", "event", "name", "groupId", "previousId")
ALWAYS_MUTATED = ("context", "messageId", "timestamp")  # every call may carry these; the others only where the call has them


def mistyped_cases() -> Iterator[Any]:
    for call, good in GOOD_EVENTS.items():
        payload = PAYLOAD_FIELD.get(call)
        for label, value in WRONG_VALUES.items():
            present = [f for f in SEGMENT_FIELDS if f in good or f in ALWAYS_MUTATED]
            for field in ([payload, f"{payload}.schema_id"] if payload else []) + present:
                if field == payload:
                    optional_and_empty = call in ("identify", "group") and not (value is not MISSING and value)
                    expected = VALID_KEY if optional_and_empty else INVALID_KEY
                elif field.endswith(".schema_id"):
                    expected = INVALID_KEY
                else:
                    expected = VALID_KEY
                yield pytest.param(call, field, value, expected, id=f"{call}-{field}-{label}")


def mutate(event: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    event = json.loads(json.dumps(event))
    container, _, name = field.rpartition(".")
    target = event[container] if container else event
    if value is MISSING:
        target.pop(name, None)
    else:
        target[name] = value
    return event


@pytest.mark.parametrize("call,field,value,expected", mistyped_cases())
def test_missing_or_mistyped_fields_are_judged_per_event(registry, call, field, value, expected):
    """Every call type with each field missing or of each wrong JSON type: 200, and only that event is affected."""
    odd = mutate(GOOD_EVENTS[call], field, value)
    if field != "messageId":
        odd["messageId"] = "odd"
    control = track(test_property="x", message_id="control")
    response = registry.handle(api_event({"batch": [odd, control]}))
    assert response["statusCode"] == 200, response["body"]
    sources = {VALID_KEY: valid_events(registry), INVALID_KEY: invalid_events(registry)}
    [arrived] = [e for e in sources[expected] if e.get("messageId") != "control"]
    assert arrived["type"] == call
    assert arrived.get("messageId") not in (None, "", {})  # a missing or empty id is derived, so retries dedupe
    assert [e["messageId"] for e in valid_events(registry) if e.get("messageId") == "control"] == ["control"]
    assert len(forwarded(registry)) == 2


@pytest.mark.parametrize("call_type", [MISSING, None, "", "Track", "boom", 7, True, [], ["track"], {}, {"track": 1}],
                         ids=["missing", "null", "empty", "capitalised", "unknown", "number", "boolean", "empty-array", "array",
                              "empty-object", "object"])
@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
def test_an_event_without_a_usable_type_is_refused_with_400(registry, call_type, path):
    """A missing or mistyped call type refuses the request with 400 (never 500), unless a single-call path names it."""
    event = mutate(GOOD_EVENTS["track"], "type", call_type)
    response = registry.handle(api_event({"batch": [event]} if path == "/v1/batch" else event, path=path))
    if path == "/v1/track" and call_type in (MISSING, None):
        assert response["statusCode"] == 200
        assert [e["type"] for e in forwarded(registry)] == ["track"]
        return
    assert response["statusCode"] == 400, response["body"]
    assert "type" in response_json(response)["message"]
    assert forwarded(registry) == []


def test_non_standard_json_numbers_are_refused_or_never_reach_segment(segment):
    """NaN and Infinity parse in Python but are not JSON: Segment would refuse the whole batch, forever, as a 400."""
    registry = make_registry(segment.url)
    body = '{"batch": [{"type": "track", "event": "e", "userId": "u", "messageId": "nan-1", "properties": {"schema_id": "%s", ' \
           '"test_property": "x", "n": NaN, "i": -Infinity}}]}' % TEST_EVENT
    response = registry.handle(raw(body))
    assert response["statusCode"] in (200, 400)
    for request in segment.received:
        json.dumps(request.body, allow_nan=False)  # what Segment's strict parser would read


# -- schema_id path tricks ------------------------------------------------------------------------------------------

PATH_TRICKS = {
    "parent": "../etc/passwd",
    "parent-json": "../../../../etc/passwd.json",
    "parent-inside": "segment/../../x.json",
    "dot-segment": "./segment/x.json",
    "absolute": "/etc/passwd",
    "absolute-json": "/abs/x.json",
    "home": "~/x.json",
    "env-var": "$HOME/x.json",
    "file-url": "file:///etc/passwd.json",
    "metadata-url": "http://169.254.169.254/latest/meta-data/x.json",
    "https-url": "https://evil.example/x.json",
    "s3-url": "s3://other-bucket/x.json",
    "windows": "C:\\schemas\\x.json",
    "backslash-parent": "..\\..\\x.json",
    "percent-encoded": "%2e%2e/%2e%2e/x.json",
    "empty-segment": "segment//x.json",
    "hidden-meta": ".reflekt/meta/1-0.json",
    "nul-suffix": f"{TEST_EVENT}\x00.txt",
    "newline": f"{TEST_EVENT}\n",
    "fullwidth": "ｓｅｇｍｅｎｔ/x.json",
    "upper-extension": "segment/demo/Test_Event/1-0.JSON",
    "empty": "",
    "blank": " ",
    "over-512": "a" * 509 + ".json",
    "100k": "a/" * 50_000 + "x.json",
}


@pytest.mark.parametrize("schema_id", PATH_TRICKS.values(), ids=PATH_TRICKS.keys())
def test_schema_id_path_tricks_never_reach_the_store(schema_id):
    """Traversal, absolute paths, URL schemes, empty and very long ids: the event is invalid, and no file or URL is tried."""
    source = RecordingSource()
    registry = memory_registry(source)
    response = registry.handle(api_event({"batch": [track(schema_id=schema_id, test_property="x", message_id="trick")]}))
    assert response["statusCode"] == 200
    [invalid] = invalid_events(registry)
    violations = invalid["context"]["reflekt"]["violations"]  # a 100 KB id also makes the event too big: maxSize
    assert "schema_id" in {v["keyword"] for v in violations}
    assert all(len(v["message"]) < 300 for v in violations)  # a long id is not echoed into every annotation
    assert source.asked == []


def test_a_symlink_out_of_the_schema_folder_is_not_followed(tmp_path):
    """A well-formed id whose file links outside the folder is 'no schema', not the file it points at."""
    root = tmp_path / "schemas"
    shutil.copytree(EXAMPLE_SCHEMAS, root)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"type": "object"}))  # would accept anything
    (root / "evil").mkdir()
    (root / "evil" / "1-0.json").symlink_to(outside)
    registry = memory_registry(DirectorySource(root))
    registry.handle(api_event({"batch": [track(schema_id="evil/1-0.json", message_id="evil")]}))
    [invalid] = invalid_events(registry)
    assert "no schema with $id 'evil/1-0.json'" in invalid["properties"]["validation_errors"][0]


# -- event names looked up in a tracking plan -------------------------------------------------------------------------

HOSTILE_NAMES = {
    "10kb": "Order Completed" * 700,
    "100kb": "x" * 100_000,
    "traversal": "../../../etc/passwd",
    "traversal-json": "../Order_Completed/1-0.json",
    "schema-id": "acme/Order_Completed/1-0.json",
    "nul": "Order Completed\x00",
    "newline": "Order Completed\n",
    "rtl-override": "\u202eOrder Completed",
    "zero-width": "Order\u200bCompleted",
    "fullwidth": "Ｏｒｄｅｒ Ｃｏｍｐｌｅｔｅｄ",
    "lone-surrogate": "Order \ud800 Completed",
    "html": "<img src=x onerror=alert(1)>",
    "combining-flood": "e" + "\u0301" * 5_000,
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_event_names_are_unplanned_without_touching_a_schema(name):
    """Long, unicode, control-character and path-like names: 200, the event invalid as unplanned with a short
    message, and no schema body read for it."""
    source = RecordingSource(TRACKING_PLAN_SCHEMAS)
    registry = memory_registry(source)
    event = {"type": "track", "event": name, "userId": "u1", "messageId": "hostile", "properties": {}}
    response = registry.handle(api_event({"batch": [event]}))
    assert response["statusCode"] == 200
    [invalid] = invalid_events(registry)
    violations = invalid["context"]["reflekt"]["violations"]
    assert "unplanned" in {v["keyword"] for v in violations}
    assert all(len(v["message"]) < 300 for v in violations)
    assert source.asked == []


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_event_name_is_judged_never_crashed_on(name):
    registry = memory_registry(DirectorySource(TRACKING_PLAN_SCHEMAS))
    event = {"type": "track", "event": name, "userId": "u1", "properties": {"order_id": "o1", "revenue": 1}}
    assert registry.handle(api_event({"batch": [event]}))["statusCode"] == 200
    assert len(forwarded(registry)) == 1


def test_schema_names_that_collide_after_normalisation_never_pick_one(tmp_path):
    """Two folders whose self.names differ only by an underscore, or by unicode form: events naming either are
    invalid, naming both folders, rather than checked against whichever was listed first."""
    for folder, name in [("A", "Café Ordered"), ("B", "Cafe\u0301 Ordered"), ("C", "Signed Up"), ("D", "Signed_Up")]:
        path = tmp_path / "plan" / folder / "1-0.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"$id": f"plan/{folder}/1-0.json", "self": {"name": name}, "type": "object"}))
    registry = memory_registry(DirectorySource(tmp_path))
    registry.handle(api_event({"batch": [{"type": "track", "event": name, "userId": "u1", "properties": {}}
                                         for name in ("Café Ordered", "Signed Up", "Signed_Up")]}))
    invalid = invalid_events(registry)
    assert [e["context"]["reflekt"]["violations"][0]["keyword"] for e in invalid] == ["ambiguous"] * 3
    assert "plan/A/, plan/B/" in invalid[0]["context"]["reflekt"]["violations"][0]["message"]


# -- Authorization and write keys -----------------------------------------------------------------------------------

MALFORMED_AUTHORIZATION = {
    "bearer": "Bearer client-key",
    "token": "Token client-key",
    "digest": 'Digest username="client-key"',
    "bare-key": "client-key",
    "scheme-only": "Basic",
    "empty-credentials": "Basic ",
    "not-base64": "Basic !!!",
    "unpadded": "Basic " + b64(b"client-key:").rstrip("="),
    "non-utf8": "Basic " + b64(b"\xff\xfe:"),
    "empty-user": "Basic " + b64(b":client-key"),
    "non-ascii": "Basic ö",
    "huge": "Basic " + "QUFB" * 5_000,
    "unknown-key": basic("intruder"),
    "two-joined": basic(CLIENT_KEY) + ", " + basic("intruder"),
}


@pytest.mark.parametrize("authorization", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys())
def test_unknown_and_malformed_authorization_is_401(registry, authorization):
    """Without a usable allowed key in the header (and none in the body) the request is refused: 401, nothing forwarded."""
    response = registry.handle(api_event({"batch": [track(test_property="x")]}, headers={"authorization": authorization}))
    assert response["statusCode"] == 401, response["body"]
    assert forwarded(registry) == []


@pytest.mark.parametrize("authorization", ["basic " + b64(b"client-key:"), "BASIC   " + b64(b"client-key:") + "  ",
                                           "Basic " + b64(b"client-key"), "Basic " + b64(b"client-key:any-password")],
                         ids=["lowercase-scheme", "padded", "no-colon", "with-password"])
def test_basic_auth_variants_sdks_send_are_accepted(registry, authorization):
    """What real clients send around the key (scheme case, spaces, a password Segment ignores) still authenticates it."""
    response = registry.handle(api_event({"batch": [track(test_property="x")]}, headers={"authorization": authorization}))
    assert response["statusCode"] == 200


NEAR_MISSES = {
    "one-short": "client-ke",
    "one-long": "client-keyy",
    "capitalised": "Client-key",
    "upper": "CLIENT-KEY",
    "leading-space": " client-key",
    "trailing-space": "client-key ",
    "trailing-newline": "client-key\n",
    "trailing-tab": "client-key\t",
    "nul": "client-key\x00",
    "underscore": "client_key",
    "cyrillic-c": "\u0441lient-key",
    "zero-width": "client\u200b-key",
    "both-keys-comma": "client-key,second-key",
    "both-keys-joined": "client-keysecond-key",
    "suffix-digit": "second-key2",
    "prefix": "client",
}


@pytest.mark.parametrize("where", ["header", "body", "event"])
@pytest.mark.parametrize("key", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_near_miss_write_keys_are_refused(registry, key, where):
    """A key one edit, case, space, homoglyph or join away from an allowed one is refused wherever it is presented."""
    event = track(test_property="x")
    body: dict[str, Any] = {"batch": [event]}
    if where == "body":
        body["writeKey"] = key
    elif where == "event":
        event["writeKey"] = key
    headers = {"authorization": "Basic " + b64(f"{key}:".encode())} if where == "header" else None
    response = registry.handle(api_event(body, write_key=None if where == "header" else CLIENT_KEY, headers=headers))
    assert response["statusCode"] == 401, response["body"]
    assert forwarded(registry) == []


@pytest.mark.parametrize("key", ["\ud800", "client-key\udfff"], ids=["lone-surrogate", "trailing-surrogate"])
def test_a_write_key_that_is_not_unicode_text_is_refused(registry, key):
    """JSON can spell a lone surrogate (\\ud800), which no allowed key contains: 401, not a crash."""
    body = json.dumps({"writeKey": key, "batch": [track(test_property="x")]})
    response = registry.handle(raw(body, write_key=None))
    assert response["statusCode"] == 401, response["body"]


# -- any request at all (property-based, at the handler) ------------------------------------------------------------

# One registry for every generated example: building it is the slow part, and hostile input must not change it.
_PROPERTY_REGISTRY = memory_registry()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)
write_keys = st.sampled_from([CLIENT_KEY, SECOND_KEY, "intruder", "", "\ud800"]) | json_values
schema_ids = st.sampled_from([TEST_EVENT, "jaffle_shop/Identify/1-0.json", "nope/1-0.json", "../x.json", ""]) | json_values
payloads = json_values | st.fixed_dictionaries({"schema_id": schema_ids}, optional={"test_property": json_values, "email": json_values})
segment_events = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(list(GOOD_EVENTS)) | json_values, "properties": payloads, "traits": payloads, "messageId": json_values,
    "context": json_values, "integrations": json_values, "writeKey": write_keys, "userId": json_values, "event": json_values,
})
segment_bodies = segment_events | json_values | st.fixed_dictionaries(
    {"batch": st.lists(segment_events, max_size=5) | json_values},
    optional={"writeKey": write_keys, "context": json_values, "integrations": json_values, "sentAt": json_values},
)
paths = st.sampled_from(["/v1/batch", "/v1/b", "/v1/t", "/v1/track", "/v1/identify", "/v1/a", "/v1/m", "/prod/v1/p", "/", "/v1/",
                         "/v1/unknown", "/v1/projects/client-key/settings", "/projects/x/settings"]) | st.text(max_size=30)
methods = st.sampled_from(["POST", "GET", "OPTIONS", "PUT", "DELETE", "HEAD", "post", ""]) | st.text(max_size=6)
header_names = st.sampled_from(["content-type", "content-encoding", "authorization", "origin", "host", "Content-Encoding",
                                "Authorization", "x-forwarded-proto"]) | st.text(max_size=10)
header_values = st.sampled_from([basic(CLIENT_KEY), basic("intruder"), "gzip", "Bearer x", "Basic !!", "application/json"]) | st.text(max_size=30)


def gzipped(data: bytes) -> str:
    return b64(gzip.compress(data))


bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    segment_bodies.map(json.dumps),
    st.binary(max_size=200).map(b64),
    segment_bodies.map(lambda doc: gzipped(json.dumps(doc).encode())),
    st.binary(max_size=200).map(gzipped),
)


@st.composite
def api_gateway_events(draw: Any, body_strategy: Any = bodies) -> dict[str, Any]:
    event = api_event(method=draw(methods), path=draw(paths), write_key=draw(st.sampled_from([CLIENT_KEY, None, "intruder"])))
    event["headers"].update(draw(st.dictionaries(header_names, header_values, max_size=4)))
    event["body"] = draw(body_strategy)
    event["isBase64Encoded"] = draw(st.booleans())
    if draw(st.booleans()):  # parts a misconfigured integration might leave out or null
        event["requestContext"]["http"] = draw(st.none() | st.just({}))
    for part in draw(st.sets(st.sampled_from(["requestContext", "headers", "rawPath"]))):
        event[part] = draw(st.none() | st.just({}))
    return event


def assert_well_formed_answer(response: Any) -> None:
    assert isinstance(response, dict)
    assert response["statusCode"] in ALLOWED_STATUSES, response["body"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response["headers"].items())
    assert response["isBase64Encoded"] is False
    if response["body"]:
        json.loads(response["body"])


def handle_counting(event: dict[str, Any]) -> tuple[dict[str, Any], int]:
    before = len(forwarded(_PROPERTY_REGISTRY))
    response = _PROPERTY_REGISTRY.handle(event)
    return response, len(forwarded(_PROPERTY_REGISTRY)) - before


@SETTINGS
@given(api_gateway_events())
def test_any_request_gets_an_allowed_status(event):
    """Arbitrary methods, paths, headers, encodings and bodies: a well-formed answer with an allowed status, never a 500."""
    response, sent = handle_counting(event)
    assert_well_formed_answer(response)
    if response["statusCode"] != 200:
        assert sent == 0


@SETTINGS
@given(api_gateway_events(segment_bodies.map(json.dumps)))
def test_any_segment_shaped_body_gets_an_allowed_status(event):
    """Batches and events with arbitrary values where Segment expects types, keys and schema ids: never a 500."""
    event["isBase64Encoded"] = False
    response, sent = handle_counting(event)
    assert_well_formed_answer(response)
    if response["statusCode"] != 200:
        assert sent == 0


# -- nothing secret in the logs -------------------------------------------------------------------------------------

SECRET_VALUE = "PAYLOAD-7f3a9c-SECRET"
SECRET_KEY = "wk-SECRETKEY-91c2d"


@pytest.mark.parametrize("scenario", ["valid", "invalid", "refused-key", "segment-down", "unreadable", "unknown-schema"])
def test_logs_carry_neither_payloads_nor_write_keys(segment, registry_log, scenario):
    """At INFO, whatever the outcome, no property or trait value and no inbound or outbound write key is logged."""
    registry = make_registry(segment.url, REGISTRY_WRITE_KEYS=SECRET_KEY)
    tune_retries(registry, sleep=lambda seconds: None)
    events = [track(test_property=SECRET_VALUE),
              {"type": "identify", "userId": "u1", "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": SECRET_VALUE}}]
    key = SECRET_KEY
    if scenario == "invalid":
        events[0]["properties"]["extra"] = SECRET_VALUE
    elif scenario == "refused-key":
        key = SECRET_KEY + "x"
    elif scenario == "segment-down":
        segment.fail(times=20, status=500)
    elif scenario == "unknown-schema":
        events[0]["properties"]["schema_id"] = "secret/Nope/1-0.json"
    event = api_event({"batch": events, "writeKey": key}, write_key=key)
    if scenario == "unreadable":
        event["body"] = event["body"][:-3]
    status = registry.handle(event)["statusCode"]
    assert status == {"refused-key": 401, "segment-down": 503, "unreadable": 400}.get(scenario, 200)
    assert registry_log.records  # the request was logged, just not its secrets
    for secret in (SECRET_VALUE, SECRET_KEY, VALID_KEY, INVALID_KEY, b64(f"{SECRET_KEY}:".encode())):
        assert secret not in registry_log.text


# -- the local server over HTTP -------------------------------------------------------------------------------------

@pytest.fixture
def local_server() -> Iterator[tuple[str, int]]:
    with serve(memory_registry()) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(address: tuple[str, int], request: bytes, *, half_close: bool = False) -> int | None:
    """Sends raw bytes and returns the status the server answered, or None if it closed or went silent."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(request)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        try:
            head = conn.recv(64)
        except TimeoutError:
            return None
    return int(head.split()[1]) if head.startswith(b"HTTP/") else None


def post(path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", f"Authorization: {basic(CLIENT_KEY)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


HTTP_HOSTILE: dict[str, tuple[Callable[[], bytes], bool, int]] = {  # request, whether to half-close after it, status
    "length-not-a-number": (lambda: post("/v1/batch", {"Content-Length": "abc"}), False, 400),
    "length-negative": (lambda: post("/v1/batch", {"Content-Length": "-1"}, b"{}"), False, 400),
    "length-beyond-limit": (lambda: post("/v1/batch", {"Content-Length": str(10**12)}), False, 413),
    "body-shorter-than-length": (lambda: post("/v1/batch", {"Content-Length": "100"}, b'{"batch": ['), True, 400),
    "chunk-size-not-hex": (lambda: post("/v1/batch", {"Transfer-Encoding": "chunked"}, b"zz\r\n{}\r\n0\r\n\r\n"), False, 400),
    "chunks-beyond-limit": (lambda: post("/v1/batch", {"Transfer-Encoding": "chunked"}, b"%x\r\n" % (MAX_ENCODED_BODY_BYTES + 1)),
                            True, 413),
    "gzip-bomb": (lambda: post("/v1/batch", {"Content-Encoding": "gzip", "Content-Length": str(len(gzip_bomb()))}, gzip_bomb()),
                  False, 400),
}


@pytest.mark.parametrize("request_bytes,half_close,status", HTTP_HOSTILE.values(), ids=HTTP_HOSTILE.keys())
def test_the_local_server_answers_hostile_http_and_keeps_serving(local_server, request_bytes, half_close, status):
    """Framing the handler never sees (bad lengths, bad chunks) is answered too, and the next request still succeeds."""
    answered = exchange(local_server, request_bytes(), half_close=half_close)
    body = one_event_body().encode()
    assert exchange(local_server, post("/v1/batch", {"Content-Length": str(len(body))}, body)) == 200
    assert answered == status


# -- what schema content can make the registry do -------------------------------------------------------------------

DANGEROUS = [r"(a+)+", r"(a*)*", r"(a|a)*", r"(.*)*", r"(\w+\s?)*", r"^(a|aa)+$", r"^(\d+[-.]?)+$", r"([a-zA-Z0-9]{2,4})+",
             r"((ab)+)+", r"(x+x+)+y", r"(.*,)*", r"(?=(a+)+b)", r"^(a|b|ab)*$"]
SAFE = [r"^[a-z0-9]+(-[a-z0-9]+)*$", r"^\d{4}-\d{2}-\d{2}$", r"^(\d{1,3}\.){3}\d{1,3}$", r"^[^@]+@[^@]+\.[^@]+$",
        r"^(https?|ftp)://[^\s/$.?#].[^\s]*$", r"^(free|pro|enterprise)$", r"(\w|\d)+", r"(a|ab)*c", r"(a++)+", r"(?>a+)+",
        r"^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$", r"^[a-zA-Z0-9_]+(\s[a-zA-Z0-9_]+)*$", "("]


@pytest.mark.parametrize("keyword", ["pattern", "patternProperties", "nested"])
@pytest.mark.parametrize("pattern", DANGEROUS)
def test_dangerous_patterns_are_detected_wherever_they_sit(pattern, keyword):
    """Nested and overlapping repetition, as a pattern, a patternProperties key or deep in a subschema, is reported."""
    document = {"pattern": {"type": "string", "pattern": pattern},
                "patternProperties": {"type": "object", "patternProperties": {pattern: {"type": "string"}}},
                "nested": {"definitions": {"x": {"items": {"properties": {"pattern": {"pattern": pattern}}}}}}}[keyword]
    assert dangerous_patterns(document) == [pattern]


@pytest.mark.parametrize("pattern", SAFE)
def test_everyday_patterns_are_not_flagged(pattern):
    """Slugs, dates, IPv4, emails, URLs, enums, possessive and atomic groups (and invalid regexes) pass the check."""
    assert dangerous_patterns({"properties": {"p": {"pattern": pattern}}, "patternProperties": {pattern: {}}}) == []


def test_patterns_in_data_are_not_mistaken_for_regexes():
    """A "pattern" inside enum, const, default or examples is data, and a property may be named "pattern"."""
    data = {"pattern": "(a+)+"}
    document = {"enum": [data], "const": data, "default": data, "examples": [data], "properties": {"pattern": {"type": "string"}}}
    assert dangerous_patterns(document) == []


def write_schema(root: Path, schema_id: str, pattern: str) -> Path:
    path = root / schema_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "$id": schema_id, "type": "object",
                                "properties": {"schema_id": {"type": "string"}, "code": {"type": "string", "pattern": pattern}}}))
    return path


def test_a_loaded_schema_with_a_dangerous_pattern_is_served_and_logged(tmp_path, registry_log):
    """The store still serves it (refusing would send its events to the invalid source) but warns, naming id and pattern."""
    write_schema(tmp_path, "risky/Event/1-0.json", r"^(\w+\s?)*$")
    schema = SchemaStore(DirectorySource(tmp_path), ttl=60).get("risky/Event/1-0.json")
    assert isinstance(schema, CompiledSchema)
    [warning] = [r for r in registry_log.records if r["level"] == "WARNING"]
    assert warning["schema_id"] == "risky/Event/1-0.json"
    assert warning["patterns"] == [r"^(\w+\s?)*$"]


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(EXAMPLE_SCHEMAS, root)
    return root


def test_publish_refuses_a_dangerous_pattern_naming_file_and_pattern(project, capsys):
    """`publish --check` fails on a ReDoS-prone pattern, saying which file and which pattern."""
    path = write_schema(project, "risky/Event/1-0.json", "(a|a)*$")
    assert publish([str(project), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{path}: pattern '(a|a)*$' can backtrack catastrophically" in err
    assert "--allow-risky-patterns" in err


def test_publish_can_be_told_to_allow_risky_patterns_and_still_warns(project, capsys):
    """--allow-risky-patterns lets the schema through, with a warning naming file and pattern."""
    path = write_schema(project, "risky/Event/1-0.json", "(a+)+")
    assert publish([str(project), "--check", "--allow-risky-patterns"]) == 0
    captured = capsys.readouterr()
    assert f"{path}: warning: pattern '(a+)+' is open to ReDoS" in captured.err
    assert f"{len(find_schemas(project))} schemas are good" in captured.out


def test_publish_reports_a_worse_problem_before_a_risky_pattern(project, capsys):
    """A schema that is wrong as well as risky is named for being wrong."""
    path = write_schema(project, "risky/Event/1-0.json", "(a+)+")
    document = json.loads(path.read_text())
    document["$id"] = "elsewhere/1-0.json"
    path.write_text(json.dumps(document))
    assert publish([str(project), "--check"]) == 1
    assert f"{path}: $id is 'elsewhere/1-0.json'" in capsys.readouterr().err


INJECTIONS = ["x'):\n    __import__('builtins').PWNED = 1\n#", 'x"):\n    __import__("builtins").PWNED = 1\n#',
              "x'''\n__import__('builtins').PWNED = 1\n'''", 'x"""\n__import__("builtins").PWNED = 1\n"""', "{variable}{name}{0}"]


def injected_schemas(text: str) -> list[dict[str, Any]]:
    return [{"type": "object", "properties": {text: {"type": "string"}}, "required": [text]},
            {"type": "object", "patternProperties": {text: {"type": "string"}}},
            {"type": "string", "pattern": text}, {"enum": [text]}, {"const": text},
            {"type": "object", "dependencies": {text: [text]}}, {"type": "string", "format": text},
            {"definitions": {text: {"type": "string"}}, "$ref": "#/definitions/" + text},
            {"type": text}, {"description": text, "title": text}]


@pytest.mark.parametrize("text", INJECTIONS, ids=["single-quote", "double-quote", "triple-single", "triple-double", "format-fields"])
def test_schema_text_cannot_run_code(text, monkeypatch):
    """fastjsonschema generates Python from the schema: strings that try to break out of its quoting stay strings."""
    import builtins

    monkeypatch.delattr(builtins, "PWNED", raising=False)
    for document in injected_schemas(text):
        schema = compile_schema("x.json", json.dumps(document).encode())
        if isinstance(schema, CompiledSchema):
            for data in ({text: "x"}, "x", text, {"a": 1}):
                try:
                    schema.validate(data)
                except Exception:
                    pass
    assert not hasattr(builtins, "PWNED")


# -- known exposure: fastjsonschema's email formats -----------------------------------------------------------------

CPU_SECONDS = 20
LONG_EMAIL_SCRIPT = """
import json, sys
from helpers import api_event, make_registry
email = "a@" + "a." * int(sys.argv[1]) + "@"
event = {"type": "identify", "userId": "u1", "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": email}}
print(make_registry(EVENTS_DIR=sys.argv[2]).handle(api_event({"batch": [event]}))["statusCode"])
"""


def test_a_long_email_trait_is_judged_in_bounded_time(tmp_path):
    """A 300,000-character "email" trait must not pin the CPU (fastjsonschema's email regex backtracks quadratically)."""
    # In a child capped at CPU_SECONDS of CPU, as a Lambda is capped by its timeout: a linear check takes
    # milliseconds and the quadratic one about a minute, so the verdict does not depend on a noisy machine.
    def limit_cpu() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))

    env = {"PYTHONPATH": f"{REPO / 'function'}:{REPO / 'tests'}", "PATH": "/usr/bin:/bin"}
    child = subprocess.run([sys.executable, "-c", LONG_EMAIL_SCRIPT, "150000", str(tmp_path)], env=env, preexec_fn=limit_cpu,
                           capture_output=True, text=True, timeout=10 * CPU_SECONDS)
    assert child.returncode == 0, f"killed after {CPU_SECONDS} s of CPU (signal {-child.returncode})"
    assert child.stdout.strip() == "200"


# -- sources ------------------------------------------------------------------------------------------------------

SOURCE_KEYS = {WEB_KEY: "web", "web-second-key": "web", IOS_KEY: "ios", SERVER_KEY: "server"}
HOSTILE_SOURCES = {**THREE_SOURCES, "sources": {**THREE_SOURCES["sources"], "web": {
    **THREE_SOURCES["sources"]["web"], "write_keys": [WEB_KEY, "web-second-key"]}}}
# Every key a source's events may land under: its valid destinations (its own keys when passing them through)
# and its invalid one.
DESTINATIONS = {"web": {WEB_KEY, "web-second-key", SHARED_INVALID_KEY}, "ios": {IOS_VALID_KEY, IOS_INVALID_KEY},
                "server": {SERVER_KEY, SHARED_INVALID_KEY}}


def sources_memory_registry() -> Registry:
    document = parse(json.dumps(HOSTILE_SOURCES).encode(), Environment(None, forwarding=True, local=False))
    store = SchemaStore(DirectorySource(EXAMPLE_SCHEMAS), ttl=60)
    return Registry(Fixed(Configuration.of(document)), Validator(store), Forwarder(), MemoryOutlets())


_SOURCES_REGISTRY = sources_memory_registry()
presented_keys = st.sampled_from([*SOURCE_KEYS, "stranger", "", WEB_KEY.upper(), WEB_KEY + " "])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.none() | presented_keys, body=st.none() | presented_keys,
       own=st.lists(st.none() | presented_keys, min_size=1, max_size=4), valid=st.lists(st.booleans(), min_size=4, max_size=4))
def test_no_request_routes_events_into_another_sources_destinations(header, body, own, valid):
    """Keys placed anywhere a request can carry them (Basic auth, body, each event): either the request is refused
    and nothing moves, or every event lands once, under a destination of the one source that owns every key."""
    registry = _SOURCES_REGISTRY
    before = {key: len(registry.outlets.events(key)) for key in registry.outlets.keys()}
    events = []
    for index, key in enumerate(own):
        event = track(test_property="x" if valid[index] else 1, message_id=f"m-{index}")
        if key is not None:
            event["writeKey"] = key
        events.append(event)
    request = api_event({"batch": events, **({"writeKey": body} if body is not None else {})}, write_key=header or None)
    response = registry.handle(request)
    sent_with = [key or header or body or None for key in own]  # an empty key counts as none
    presented = {key for key in (header, body, *own) if key}
    owners = {SOURCE_KEYS.get(key) for key in presented}
    arrived = {key: registry.outlets.events(key)[before.get(key, 0):] for key in registry.outlets.keys()}
    arrived = {key: events for key, events in arrived.items() if events}
    refused = None in sent_with or None in owners or len(owners) != 1
    assert response["statusCode"] == (401 if refused else 200)
    if refused:
        assert arrived == {}
        return
    [owner] = owners
    assert set(arrived) <= DESTINATIONS[owner]
    assert sorted(e["messageId"] for events in arrived.values() for e in events) == [f"m-{i}" for i in range(len(own))]
    assert all("writeKey" not in e for events in arrived.values() for e in events)


@pytest.mark.parametrize("name", ["x" * 10_000, "wéb", "web\u0000", "web/../ios", "𝕨𝕖𝕓", "web\u200b", " web", "\ud800"],
                         ids=["10kb", "accented", "nul", "traversal", "math-letters", "zero-width", "leading-space", "lone-surrogate"])
def test_hostile_source_names_are_refused_briefly(name):
    """A name is a folder and a log field: anything but plain ASCII is refused, and the message stays short."""
    document = {"version": 1, "invalid_write_key": "i", "sources": {name: {"write_keys": ["k"]}}}
    with pytest.raises(ConfigError) as excinfo:
        parse(json.dumps(document).encode(), Environment(None, forwarding=True, local=False))
    assert "a source name is 1 to 64" in str(excinfo.value) and len(str(excinfo.value)) < 300


def test_names_that_collide_after_case_folding_are_refused():
    document = {"version": 1, "invalid_write_key": "i", "sources": {"IOS": {"write_keys": ["a"]}, "ios": {"write_keys": ["b"]}}}
    with pytest.raises(ConfigError, match="sources.ios: differs from sources.IOS only in case"):
        parse(json.dumps(document).encode(), Environment(None, forwarding=True, local=False))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=30)
document_like = st.fixed_dictionaries({"version": st.just(1)}, optional={
    "plans": json_values, "controls": json_values, "invalid_write_key": json_values, "default_source": json_values,
    "sources": st.dictionaries(st.sampled_from(["web", "ios", "Web", "x" * 70]), st.fixed_dictionaries(
        {}, optional={"write_keys": st.lists(st.sampled_from(["k1", "k2", "i", " k"]), max_size=3) | json_values,
                      "valid_write_key": st.sampled_from(["k1", "v", "i"]) | json_values,
                      "invalid_write_key": st.sampled_from(["k2", "i"]) | json_values,
                      "controls": json_values, "plans": json_values}), max_size=3)})


@settings(max_examples=300, deadline=None)
@given(document_like | json_values)
def test_any_document_is_parsed_or_refused_with_a_configuration_error(document):
    """Whatever the document holds, parse returns a Document or raises ConfigError naming a key: never a crash."""
    try:
        parsed = parse(json.dumps(document).encode(), Environment(None, forwarding=True, local=False))
    except ConfigError as e:
        assert str(e) and len(str(e)) < 1_000
    else:
        assert all(source.invalid_write_key for source in parsed.sources)
