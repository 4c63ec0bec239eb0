"""Injected faults: Segment and S3 misbehaving, and schema objects the registry cannot use.

For each: what the client is told, what reaches each Segment source, and the proof (fakes.delivery.check) that
nothing accepted was lost: every event the client was told was accepted arrived at the right source, once per
send, or the client was told to retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fakes.delivery import Ledger, check
from fakes.s3 import FAULTS as S3_FAULTS
from fakes.s3 import FakeS3
from fakes.segment import FakeSegment
from helpers import (EXAMPLE_SCHEMAS, INVALID_KEY, TEST_EVENT, VALID_KEY, api_event, make_registry, response_json, track,
                     tune_retries)
from reflekt_registry.config import S3Location
from reflekt_registry.forwarder import RetryPolicy
from reflekt_registry.handler import Registry
from reflekt_registry.schemas import S3Source, SchemaStore

BUCKET = "schemas-bucket"
PREFIX = "schemas/"
IDENTIFY = "jaffle_shop/Identify/1-0.json"
RETRY = {"success": False, "code": "service_unavailable", "message": "a dependency is unavailable; retry"}
# The registry's own attempts per batch in these tests (its default), so a duplicate it causes can be allowed for.
ATTEMPTS = 4
# Enough for a client to get through every planned fault; a real SDK retries for hours.
CLIENT_TRIES = 8


def policy(read_timeout: float = 2.0) -> RetryPolicy:
    """The default policy with short waits: sleeping is switched off, so only timeouts take real time."""
    return RetryPolicy(attempts=ATTEMPTS, budget=10.0, connect_timeout=1.0, read_timeout=read_timeout, backoff_base=0.001,
                       backoff_max=0.001, jitter=0.0)


def fast_registry(segment: FakeSegment, read_timeout: float = 2.0) -> Registry:
    return tune_retries(make_registry(segment.url), policy(read_timeout), sleep=lambda seconds: None)


def mixed_batch(tag: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Two valid events, one invalid and an alias (which needs no schema), and the source each belongs at."""
    events = [
        track(test_property="x", message_id=f"{tag}-valid-1"),
        {"type": "identify", "userId": "u1", "messageId": f"{tag}-valid-2", "traits": {"schema_id": IDENTIFY, "email": "a@b.co"}},
        track(test_property=3, message_id=f"{tag}-invalid"),
        {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": f"{tag}-alias"},
    ]
    expected = {f"{tag}-valid-1": VALID_KEY, f"{tag}-valid-2": VALID_KEY, f"{tag}-invalid": INVALID_KEY, f"{tag}-alias": VALID_KEY}
    return events, expected


def send_until_accepted(registry: Registry, events: list[dict[str, Any]], expected: dict[str, str], ledger: Ledger) -> list[dict[str, Any]]:
    """A client that retries the same batch on 503, as every SDK does, recording what it was told each time."""
    responses = []
    for _ in range(CLIENT_TRIES):
        response = registry.handle(api_event({"batch": events, "sentAt": "2026-11-26T18:00:00.000Z"}))
        responses.append(response)
        ledger.record(((e["messageId"], expected[e["messageId"]]) for e in events), response["statusCode"])
        if response["statusCode"] != 503:
            break
    return responses


# -- Segment faults -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentFault:
    plan: Callable[[FakeSegment, int], None]
    read_timeout: float = 2.0
    absorbed: bool = True  # the registry's own retries ride out a single occurrence
    persistent_status: int = 503  # what the client is told while the fault outlasts the registry's attempts
    retry_after: str | None = None  # passed on to the client with the 503
    duplicates: bool = False  # Segment may keep a batch the registry gave up on, so the retry duplicates it


RETRY_AT = "Wed, 21 Oct 2065 07:28:00 GMT"  # Retry-After as an HTTP date, far enough ahead to outlast any run
SEGMENT_FAULTS = {
    "500": SegmentFault(lambda s, n: s.fail(n, 500)),
    "502": SegmentFault(lambda s, n: s.fail(n, 502)),
    "503": SegmentFault(lambda s, n: s.fail(n, 503)),
    "429": SegmentFault(lambda s, n: s.fail(n, 429)),
    "429-retry-after-1s": SegmentFault(lambda s, n: s.fail(n, 429, retry_after="1"), retry_after="1"),
    "429-retry-after-30s": SegmentFault(lambda s, n: s.fail(n, 429, retry_after="30"), absorbed=False, retry_after="30"),
    "429-retry-after-date": SegmentFault(lambda s, n: s.fail(n, 429, retry_after=RETRY_AT), absorbed=False, retry_after=RETRY_AT),
    "400-refused": SegmentFault(lambda s, n: s.fail(n, 400), absorbed=False),
    "hang": SegmentFault(lambda s, n: s.hang(n, seconds=1.0), read_timeout=0.2),
    "close": SegmentFault(lambda s, n: s.close(n)),
    "slow-within-timeout": SegmentFault(lambda s, n: s.slow(n, seconds=0.2), read_timeout=10.0, persistent_status=200),
    "slow-past-timeout": SegmentFault(lambda s, n: s.slow(n, seconds=1.0), read_timeout=0.2, duplicates=True),
}


@pytest.mark.parametrize("fault", SEGMENT_FAULTS.values(), ids=SEGMENT_FAULTS.keys())
def test_a_single_segment_fault(segment, fault):
    """One fault: ridden out by the registry (200) or, when Segment says to wait or refuses, a 503 the client retries."""
    registry = fast_registry(segment, fault.read_timeout)
    fault.plan(segment, 1)
    events, expected = mixed_batch("once")
    ledger = Ledger()
    responses = send_until_accepted(registry, events, expected, ledger)
    first = responses[0]
    assert first["statusCode"] == (200 if fault.absorbed else 503)
    if not fault.absorbed:
        assert response_json(first) == RETRY
        assert first["headers"].get("retry-after") == fault.retry_after
    assert responses[-1]["statusCode"] == 200
    outcome = check(ledger, segment, registry_attempts=ATTEMPTS if fault.duplicates else 1)
    assert outcome.accepted == len(events)
    if fault.absorbed and not fault.duplicates:
        assert outcome.duplicates == 0


@pytest.mark.parametrize("fault", SEGMENT_FAULTS.values(), ids=SEGMENT_FAULTS.keys())
def test_a_lasting_segment_fault(segment, fault):
    """A fault outlasting every attempt: 503 (with Segment's Retry-After), nothing half-delivered, then the retry lands once."""
    registry = fast_registry(segment, fault.read_timeout)
    fault.plan(segment, 2 * ATTEMPTS)
    events, expected = mixed_batch("lasting")
    ledger = Ledger()
    responses = send_until_accepted(registry, events, expected, ledger)
    first = responses[0]
    assert first["statusCode"] == fault.persistent_status
    if fault.persistent_status == 503:
        assert response_json(first) == RETRY
        assert first["headers"].get("retry-after") == fault.retry_after
    assert responses[-1]["statusCode"] == 200
    outcome = check(ledger, segment, registry_attempts=ATTEMPTS if fault.duplicates else 1)
    assert outcome.accepted == len(events)
    if not fault.duplicates:
        assert outcome.duplicates == 0  # a 503 is all or nothing: both sources failed, so the retry is the first copy


def test_one_source_failing_means_a_retry_that_duplicates_only_what_segment_dedupes(segment):
    """Valid source accepted, invalid refused: the client is told 503 and its retry re-sends both, which messageId covers."""
    registry = fast_registry(segment)
    events, expected = mixed_batch("half")
    invalid_only = [e for e in events if expected[e["messageId"]] == INVALID_KEY]
    valid_only = [e for e in events if expected[e["messageId"]] == VALID_KEY]
    ledger = Ledger()
    # Sent apart first so the fault can only hit the invalid source, then the whole batch as the client's retry.
    segment.fail(1, 400)  # Segment refusing is not retried by the registry: one fault, one 503
    assert registry.handle(api_event({"batch": invalid_only}))["statusCode"] == 503
    ledger.record(((e["messageId"], INVALID_KEY) for e in invalid_only), 503)
    assert registry.handle(api_event({"batch": valid_only}))["statusCode"] == 200
    ledger.record(((e["messageId"], VALID_KEY) for e in valid_only), 200)
    send_until_accepted(registry, events, expected, ledger)
    outcome = check(ledger, segment)
    assert outcome.duplicates == len(valid_only)


# -- S3 faults ------------------------------------------------------------------------------------------------------

def example_objects() -> dict[str, bytes]:
    return {PREFIX + path.relative_to(EXAMPLE_SCHEMAS).as_posix(): path.read_bytes() for path in EXAMPLE_SCHEMAS.rglob("*.json")
            if ".reflekt" not in path.parts}


def s3_registry(segment: FakeSegment, s3: FakeS3, ttl: float = 60.0) -> Registry:
    """The Lambda's wiring: schemas from a bucket (here the fake client), events to the fake Segment."""
    registry = fast_registry(segment)
    registry.validator.store = SchemaStore(S3Source(S3Location(BUCKET, "us-east-1", PREFIX), s3), ttl)
    return registry


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3(example_objects())


@pytest.mark.parametrize("fault", S3_FAULTS)
def test_s3_failing_with_nothing_cached_answers_503_and_forwards_nothing(segment, s3, fault):
    """S3 erroring, denying or timing out before a schema is cached: 503, not one event forwarded, then the retry lands."""
    registry = s3_registry(segment, s3)
    s3.fail(fault)
    events, expected = mixed_batch("s3")
    ledger = Ledger()
    responses = send_until_accepted(registry, events, expected, ledger)
    assert [r["statusCode"] for r in responses] == [503, 200]
    assert response_json(responses[0]) == RETRY
    outcome = check(ledger, segment)
    assert (outcome.accepted, outcome.duplicates) == (len(events), 0)


@pytest.mark.parametrize("fault", S3_FAULTS)
def test_s3_failing_with_schemas_cached_keeps_serving_them(segment, s3, fault, registry_log):
    """With every schema cached (and its TTL over), S3 failing costs nothing: 200, events judged by the cached schema."""
    registry = s3_registry(segment, s3, ttl=0)
    events, expected = mixed_batch("warm")
    ledger = Ledger()
    send_until_accepted(registry, events, expected, ledger)
    s3.fail(fault, times=10)
    events, more = mixed_batch("cached")
    expected |= more
    assert [r["statusCode"] for r in send_until_accepted(registry, events, expected, ledger)] == [200]
    outcome = check(ledger, segment)
    assert (outcome.accepted, outcome.duplicates) == (8, 0)
    assert any(r["message"] == "serving cached schema while the store is unavailable" for r in registry_log.records)


def by_name(tag: str) -> list[dict[str, Any]]:
    """Events that name no schema_id, as an app written for Protocols sends them: judged through the index."""
    return [{"type": "track", "event": "Test Event", "userId": "u1", "messageId": f"{tag}-named", "properties": {"test_property": "x"}},
            {"type": "identify", "userId": "u1", "messageId": f"{tag}-identify", "traits": {"email": "a@b.co"}}]


@pytest.mark.parametrize("fault", S3_FAULTS)
def test_s3_failing_before_the_index_is_read_answers_503_then_the_retry_lands(segment, s3, fault):
    registry = s3_registry(segment, s3)
    s3.fail(fault)
    events = by_name("index")
    ledger = Ledger()
    # Test Event's schema declares schema_id (the original convention), so the event found by name is invalid.
    responses = send_until_accepted(registry, events, {"index-named": INVALID_KEY, "index-identify": INVALID_KEY}, ledger)
    assert [r["statusCode"] for r in responses] == [503, 200]
    assert check(ledger, segment).duplicates == 0


@pytest.mark.parametrize("fault", S3_FAULTS)
def test_s3_failing_with_the_index_cached_keeps_serving_it(segment, s3, fault, registry_log):
    registry = s3_registry(segment, s3, ttl=0)
    ledger = Ledger()
    expected = {"warm-named": INVALID_KEY, "warm-identify": INVALID_KEY}
    send_until_accepted(registry, by_name("warm"), expected, ledger)
    s3.fail(fault, times=10)
    expected |= {"cached-named": INVALID_KEY, "cached-identify": INVALID_KEY}
    assert [r["statusCode"] for r in send_until_accepted(registry, by_name("cached"), expected, ledger)] == [200]
    assert any(r["message"] == "serving cached schema index while the store is unavailable" for r in registry_log.records)


def unusable_schema_violation(segment: FakeSegment, s3: FakeS3, tag: str, message_id: str) -> dict[str, str]:
    """Sends a mixed batch in which event `message_id` names a schema the store cannot use: the request is
    accepted at once, nothing is lost, and that event reaches the invalid source; returns its one violation."""
    registry = s3_registry(segment, s3)
    events, expected = mixed_batch(tag)
    expected[message_id] = INVALID_KEY
    ledger = Ledger()
    assert [r["statusCode"] for r in send_until_accepted(registry, events, expected, ledger)] == [200]
    check(ledger, segment)
    [annotated] = [e for e in segment.events(INVALID_KEY) if e["messageId"] == message_id]
    [violation] = annotated["context"]["reflekt"]["violations"]
    assert violation["keyword"] == "schema"
    return violation


def test_s3_404_makes_the_event_invalid_not_the_request(segment, s3):
    """A schema missing from the bucket is the event's problem: 200, the event annotated 'no schema', the rest unaffected."""
    del s3.objects[PREFIX + IDENTIFY]
    violation = unusable_schema_violation(segment, s3, "missing", "missing-valid-2")
    assert f"no schema with $id '{IDENTIFY}' in s3://{BUCKET}/{PREFIX}" in violation["message"]


def test_s3_flapping_between_requests_loses_nothing(segment, s3):
    """S3 failing every other schema fetch across many requests: each event is accepted exactly once in the end."""
    registry = s3_registry(segment, s3, ttl=0)
    ledger = Ledger()
    for round_ in range(6):
        s3.fail("read timeout" if round_ % 2 else "500 InternalError")
        events, expected = mixed_batch(f"flap-{round_}")
        assert send_until_accepted(registry, events, expected, ledger)[-1]["statusCode"] == 200
    outcome = check(ledger, segment)
    assert (outcome.accepted, outcome.duplicates, outcome.lost) == (24, 0, 0)


# -- schema objects the registry cannot use -------------------------------------------------------------------------

def schema(**keywords: Any) -> bytes:
    return json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "$id": TEST_EVENT, "type": "object", **keywords}).encode()


UNUSABLE_SCHEMAS = {
    "not-json": (b"{oops", "is not valid JSON"),
    "empty-object-body": (b"", "is not valid JSON"),
    "not-utf8": (b"\xff\xfe\x00{", "is not valid JSON"),
    "html-error-page": (b"<html><body>AccessDenied</body></html>", "is not valid JSON"),
    "json-array": (b"[]", "is not a JSON object"),
    "json-string": (b'"schema"', "is not a JSON object"),
    "unknown-type": (schema(properties={"test_property": {"type": "strin"}}), "cannot be compiled"),
    "bad-regex": (schema(properties={"test_property": {"pattern": "("}}), "cannot be compiled"),
    "required-not-array": (schema(required="schema_id"), "cannot be compiled"),
    "properties-not-object": (schema(properties=7), "cannot be compiled"),
    "dangling-ref": (schema(properties={"test_property": {"$ref": "#/definitions/missing"}}), "cannot be compiled"),
    "remote-ref": (schema(properties={"test_property": {"$ref": "https://evil.example/s.json"}}), "points outside the schema"),
    "file-ref": (schema(properties={"test_property": {"$ref": "file:///etc/passwd"}}), "points outside the schema"),
    "draft-2020-12": (schema(**{"$schema": "https://json-schema.org/draft/2020-12/schema"}), "only draft-04, draft-06 and draft-07"),
    "draft-2019-09": (schema(**{"$schema": "https://json-schema.org/draft/2019-09/schema"}), "only draft-04, draft-06 and draft-07"),
    "draft-03": (schema(**{"$schema": "http://json-schema.org/draft-03/schema#"}), "only draft-04, draft-06 and draft-07"),
    "dialect-not-a-string": (schema(**{"$schema": 7}), "only draft-04, draft-06 and draft-07"),
}


@pytest.mark.parametrize("body,reason", UNUSABLE_SCHEMAS.values(), ids=UNUSABLE_SCHEMAS.keys())
def test_an_unusable_schema_object_makes_its_events_invalid(segment, s3, registry_log, monkeypatch, body, reason):
    """Not JSON, not a schema, or a refused draft: 200, its events annotated with why, others unaffected, no fetch of refs."""
    import urllib.request

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"schema content reached for the network: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    s3.objects[PREFIX + TEST_EVENT] = body
    violation = unusable_schema_violation(segment, s3, "unusable", "unusable-valid-1")
    assert f"schema '{TEST_EVENT}'" in violation["message"] and reason in violation["message"]
    [logged] = [r for r in registry_log.records if r["message"] == "schema is unusable"]
    assert (logged["level"], logged["schema_id"]) == ("ERROR", TEST_EVENT)


def test_a_fixed_schema_takes_over_from_an_unusable_one(segment, s3):
    """Once the object is replaced with a good schema, the next fetch after the TTL validates with it."""
    good = s3.objects[PREFIX + TEST_EVENT]
    s3.objects[PREFIX + TEST_EVENT] = b"{oops"
    registry = s3_registry(segment, s3, ttl=0)
    registry.handle(api_event({"batch": [track(test_property="x", message_id="while-broken")]}))
    s3.objects[PREFIX + TEST_EVENT] = good
    registry.handle(api_event({"batch": [track(test_property="x", message_id="after-fix")]}))
    assert segment.message_ids(INVALID_KEY) == ["while-broken"]
    assert segment.message_ids(VALID_KEY) == ["after-fix"]

