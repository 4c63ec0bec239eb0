"""Injected faults: Segment and S3 misbehaving, and schema objects the registry cannot use.

For each: what the client is told, what reaches each Segment source, and the proof (fakes.delivery.check) that
nothing accepted was lost: every event the client was told was accepted arrived at the right source, once per
send, or the client was told to retry. Segment's faults are run twice: with the spool working (a fault the
registry cannot ride out is spooled, answered 200 and replayed by the drain) and with the spool down as well
(the client is told 503 and retries, as before there was a spool).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from segment.analytics import Client

from fakes.delivery import Ledger, arrivals, check
from fakes.s3 import FAULTS as S3_FAULTS
from fakes.s3 import FakeS3
from fakes.segment import FakeSegment
from helpers import (CLIENT_KEY, EXAMPLE_SCHEMAS, INVALID_KEY, IOS_KEY, JUDGED_BY_SOURCE, OWN_PLANS_AND_CONTROLS, SERVER_KEY,
                     TEST_EVENT, VALID_KEY, WEB_KEY, api_event, both_projects, judged_by_source, make_registry, response_json,
                     sources_registry, track, tune_retries, unusable_folder)
from local_support import serve
from reflekt_registry.config import S3Location, Settings
from reflekt_registry.retry import RetryPolicy
from reflekt_registry.handler import Registry
from reflekt_registry.local.server import background_drain
from reflekt_registry.schemas import S3Source, SchemaStore
from s3_support import RUNTIME_ENV, create_bucket_with_schemas, lambda_env, remove_bucket

BUCKET = "schemas-bucket"
PREFIX = "schemas/"
IDENTIFY = "jaffle_shop/Identify/1-0.json"
RETRY = {"success": False, "code": "service_unavailable", "message": "a dependency is unavailable; retry"}
# The registry's own attempts per batch in these tests (its default), so a duplicate it causes can be allowed for.
ATTEMPTS = 4
# Enough for a client to get through every planned fault; a real SDK retries for hours.
CLIENT_TRIES = 8
# Drains until the spool is empty: each planned fault left over fails at most one drain.
DRAIN_ROUNDS = 2 * ATTEMPTS + 2
# What a drain may take here: far more than the test needs, since the drain stops once the spool is empty.
DRAIN_SECONDS = 60.0


def policy(read_timeout: float = 2.0) -> RetryPolicy:
    """The default policy with short waits: sleeping is switched off, so only timeouts take real time."""
    return RetryPolicy(attempts=ATTEMPTS, budget=10.0, connect_timeout=1.0, read_timeout=read_timeout, backoff_base=0.001,
                       backoff_max=0.001, jitter=0.0)


def fast_registry(segment: FakeSegment, read_timeout: float = 2.0, spool_dir: str | None = None) -> Registry:
    registry = make_registry(segment.url, **({"SPOOL_DIR": spool_dir} if spool_dir else {}))
    registry.replay.sleep = lambda seconds: None
    return tune_retries(registry, policy(read_timeout), sleep=lambda seconds: None)


def drain_all(registry: Registry) -> list[dict[str, Any]]:
    """Runs the drain, as the schedule would every minute, until nothing is left; its reports."""
    reports = [registry.drain(DRAIN_SECONDS)]
    while reports[-1]["objects_left"] and len(reports) < DRAIN_ROUNDS:
        reports.append(registry.drain(DRAIN_SECONDS))
    assert reports[-1]["objects_left"] == 0, reports
    return reports


@pytest.fixture(params=["spooling", "spool-down"])
def spool_dir(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return str(tmp_path / "spool") if request.param == "spooling" else unusable_folder(tmp_path)


def spooling(spool_dir: str) -> bool:
    return "not-a-folder" not in spool_dir


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
    poison: bool = False  # Segment refuses the batch as such: once spooled, the drain sets it aside


RETRY_AT = "Wed, 21 Oct 2065 07:28:00 GMT"  # Retry-After as an HTTP date, far enough ahead to outlast any run
SEGMENT_FAULTS = {
    "500": SegmentFault(lambda s, n: s.fail(n, 500)),
    "502": SegmentFault(lambda s, n: s.fail(n, 502)),
    "503": SegmentFault(lambda s, n: s.fail(n, 503)),
    "429": SegmentFault(lambda s, n: s.fail(n, 429)),
    "429-retry-after-1s": SegmentFault(lambda s, n: s.fail(n, 429, retry_after="1"), retry_after="1"),
    "429-retry-after-30s": SegmentFault(lambda s, n: s.fail(n, 429, retry_after="30"), absorbed=False, retry_after="30"),
    "429-retry-after-date": SegmentFault(lambda s, n: s.fail(n, 429, retry_after=RETRY_AT), absorbed=False, retry_after=RETRY_AT),
    "400-refused": SegmentFault(lambda s, n: s.fail(n, 400), absorbed=False, poison=True),
    "hang": SegmentFault(lambda s, n: s.hang(n, seconds=1.0), read_timeout=0.2),
    "close": SegmentFault(lambda s, n: s.close(n)),
    "slow-within-timeout": SegmentFault(lambda s, n: s.slow(n, seconds=0.2), read_timeout=10.0, persistent_status=200),
    "slow-past-timeout": SegmentFault(lambda s, n: s.slow(n, seconds=1.0), read_timeout=0.2, duplicates=True),
}


def assert_told_to_retry(response: dict[str, Any], fault: SegmentFault) -> None:
    assert response["statusCode"] == 503
    assert response_json(response) == RETRY
    assert response["headers"].get("retry-after") == fault.retry_after


def registry_attempts(fault: SegmentFault) -> int:
    """Copies one send may leave at Segment: each of the registry's attempts, and the replay of what it spooled."""
    return ATTEMPTS + 1 if fault.duplicates else 1


@pytest.mark.parametrize("fault", SEGMENT_FAULTS.values(), ids=SEGMENT_FAULTS.keys())
def test_a_single_segment_fault(segment, fault, spool_dir):
    """One fault: ridden out by the registry (200); when Segment says to wait or refuses, spooled (200) and replayed,
    or with the spool down, a 503 the client retries."""
    registry = fast_registry(segment, fault.read_timeout, spool_dir)
    fault.plan(segment, 1)
    events, expected = mixed_batch("once")
    ledger = Ledger()
    responses = send_until_accepted(registry, events, expected, ledger)
    if fault.absorbed or spooling(spool_dir):
        assert responses[0]["statusCode"] == 200
    else:
        assert_told_to_retry(responses[0], fault)
    assert responses[-1]["statusCode"] == 200
    drain_all(registry)
    outcome = check(ledger, segment, registry_attempts=registry_attempts(fault))
    assert outcome.accepted == len(events)
    if fault.absorbed and not fault.duplicates:
        assert outcome.duplicates == 0


@pytest.mark.parametrize("fault", SEGMENT_FAULTS.values(), ids=SEGMENT_FAULTS.keys())
def test_a_lasting_segment_fault(segment, fault, spool_dir):
    """A fault outlasting every attempt: spooled (200) and replayed once Segment is back, or with the spool down a 503
    (with Segment's Retry-After); nothing half-delivered, and each event lands once."""
    registry = fast_registry(segment, fault.read_timeout, spool_dir)
    fault.plan(segment, 2 * ATTEMPTS)
    events, expected = mixed_batch("lasting")
    ledger = Ledger()
    responses = send_until_accepted(registry, events, expected, ledger)
    if fault.persistent_status == 503 and not spooling(spool_dir):
        assert_told_to_retry(responses[0], fault)
    else:
        assert responses[0]["statusCode"] == 200
    assert responses[-1]["statusCode"] == 200
    reports = drain_all(registry)
    if fault.poison and spooling(spool_dir):
        # Segment refused both batches for what they are: the drain sets them aside, counted, instead of retrying forever.
        assert sum(report["rejected"] for report in reports) == len(events) and segment.received == []
        rejected = b"".join(path.read_bytes() for path in (Path(spool_dir) / "rejected").iterdir())
        assert all(f'"messageId":"{message_id}"'.encode() in rejected for message_id in expected)
        return
    outcome = check(ledger, segment, registry_attempts=registry_attempts(fault))
    assert outcome.accepted == len(events)
    if not fault.duplicates:
        assert outcome.duplicates == 0  # all or nothing, then replayed (or retried) once


def test_one_source_failing_means_a_retry_that_duplicates_only_what_segment_dedupes(segment, tmp_path):
    """Spool down, valid source accepted, invalid refused: the client is told 503 and its retry re-sends both, which
    messageId covers."""
    registry = fast_registry(segment, spool_dir=unusable_folder(tmp_path))
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
    # The index that vouches for the cached schemas, or a schema itself, is what the store could not refresh.
    assert any(r["message"] in ("serving cached schema while the store is unavailable",
                                "serving cached schema index while the store is unavailable") for r in registry_log.records)


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



# -- Segment down for a while: real SDK clients, the spool and the drain ---------------------------------------------

OUTAGE_SECONDS = 1.0
SDK_CLIENTS = 3
SDK_EVENTS = 40
# Between two events of one client, so the clients keep sending through the outage and after it.
SEND_INTERVAL_SECONDS = 0.04
DRAIN_INTERVAL_SECONDS = 0.2
# Only stops a stuck drain from hanging the suite; the drain empties the spool in well under a second.
DRAIN_DEADLINE_SECONDS = 60.0


def sdk_plan(client: int) -> list[tuple[str, dict[str, Any], str]]:
    """(call, arguments, the source it belongs at) for one client: tracks, a fifth of them invalid, and identifies."""
    plan = []
    for i in range(SDK_EVENTS):
        message_id = f"outage-{client}-{i:02d}"
        if i % 6 == 0:
            traits = {"schema_id": IDENTIFY, "email": "a@b.co"}
            plan.append(("identify", {"user_id": f"u{i}", "traits": traits, "message_id": message_id}, VALID_KEY))
        else:
            properties = {"schema_id": TEST_EVENT, "test_property": "ok" if i % 5 else i}
            plan.append(("track", {"user_id": f"u{i}", "event": "Test Event", "properties": properties, "message_id": message_id},
                         VALID_KEY if i % 5 else INVALID_KEY))
    return plan


def impatient_client(url: str, client: int, gave_up: list[str]) -> None:
    """analytics-python that never retries: a batch not answered 200 is dropped at once (its ids noted)."""
    sdk = Client(CLIENT_KEY, host=url, max_retries=0, upload_size=5, upload_interval=0.05, gzip=client == 1,
                 on_error=lambda error, batch: gave_up.extend(m["messageId"] for m in batch))
    for call, arguments, _ in sdk_plan(client):
        getattr(sdk, call)(**arguments)
        time.sleep(SEND_INTERVAL_SECONDS)
    sdk.flush()
    sdk.shutdown()


def run_outage(registry: Registry, segment: FakeSegment) -> list[str]:
    """Clients send through the local server while Segment is down for OUTAGE_SECONDS; the background drain empties
    the spool once it is back. Returns the ids the clients gave up on."""
    tune_retries(registry, RetryPolicy(attempts=2, budget=0.5, backoff_base=0.01, backoff_max=0.05))
    gave_up: list[str] = []
    with serve(registry) as url, background_drain(registry, DRAIN_INTERVAL_SECONDS):
        segment.down(OUTAGE_SECONDS)
        threads = [threading.Thread(target=impatient_client, args=(url, c, gave_up), daemon=True) for c in range(SDK_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DRAIN_DEADLINE_SECONDS)
        deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
        while registry.spool.store.list(1) and time.monotonic() < deadline:
            time.sleep(DRAIN_INTERVAL_SECONDS)
        assert registry.spool.store.list(1) == [], "the drain never emptied the spool"
    return gave_up


def assert_outage_lost_nothing(segment: FakeSegment, gave_up: list[str], registry_log: Any) -> None:
    expected = {args["message_id"]: source for c in range(SDK_CLIENTS) for _, args, source in sdk_plan(c)}
    spooled = sum(r["events"] for r in registry_log.records if r["message"] == "spooled events Segment did not take")
    assert segment.outage_answers > 0 and spooled > 0, "the outage never made the registry spool"  # it did bite
    assert gave_up == [], "a client was refused: the spool should have taken its events"
    seen = arrivals(segment)
    wrong = {m: dict(seen.get(m, {})) for m, source in expected.items() if dict(seen.get(m, {})) != {source: 1}}
    assert wrong == {}, f"{len(wrong)} events did not arrive exactly once at their source: {list(wrong.items())[:10]}"
    assert set(seen) == set(expected)


def test_segment_down_for_a_while_loses_nothing_with_the_local_spool(segment, tmp_path, registry_log):
    """Segment down ~1 s while impatient SDK clients keep sending: every event told 200 arrives exactly once after."""
    registry = make_registry(segment.url, SPOOL_DIR=str(tmp_path / "spool"))
    assert_outage_lost_nothing(segment, run_outage(registry, segment), registry_log)


def lambda_registry(segment: FakeSegment, moto_url: str) -> Registry:
    """The registry as the Lambda wires it, its one S3 client (schemas and spool) on moto's server."""
    return Registry.from_settings(Settings.from_env({**lambda_env(segment.url), **RUNTIME_ENV, "AWS_ENDPOINT_URL_S3": moto_url}))


def test_segment_down_for_a_while_loses_nothing_with_the_s3_spool(segment, registry_log, moto_url):
    """The same through the Lambda's wiring: schemas and the spool in one (moto) bucket, spool/ prefix."""
    create_bucket_with_schemas(boto3.client("s3", region_name="us-east-1"))
    gave_up = run_outage(lambda_registry(segment, moto_url), segment)
    assert_outage_lost_nothing(segment, gave_up, registry_log)


def test_s3_failing_as_well_gives_503_and_the_retry_lands_once(segment, moto_url):
    """Segment down and the spool's bucket gone (schemas still cached): 503, nothing half-kept; the retry lands once."""
    s3 = boto3.client("s3", region_name="us-east-1")
    create_bucket_with_schemas(s3)
    registry = tune_retries(lambda_registry(segment, moto_url), policy(), sleep=lambda seconds: None)
    ledger = Ledger()
    warm, expected = mixed_batch("warm")
    send_until_accepted(registry, warm, expected, ledger)  # caches every schema the batches name
    remove_bucket(s3)
    segment.fail(2 * ATTEMPTS, 503)
    events, more = mixed_batch("s3-too")
    expected |= more
    responses = send_until_accepted(registry, events, expected, ledger)
    assert [r["statusCode"] for r in responses] == [503, 200]
    assert response_json(responses[0]) == RETRY
    outcome = check(ledger, segment)
    assert (outcome.accepted, outcome.duplicates) == (8, 0)


def test_with_many_sources_each_spooled_batch_is_replayed_to_its_own_destination_key(tmp_path, segment):
    """Three sources (pass-through, own keys, a shared invalid key) while Segment refuses everything: every request
    is accepted, each batch is spooled under the key it was bound for, and the drain delivers each there, once."""
    registry = sources_registry(tmp_path, segment.url, OWN_PLANS_AND_CONTROLS, SCHEMA_DIR=str(both_projects(tmp_path / "schemas")))
    registry.replay.sleep = lambda seconds: None
    segment.down(DRAIN_DEADLINE_SECONDS)
    for key, prefix in ((WEB_KEY, "web"), (IOS_KEY, "ios"), (SERVER_KEY, "server")):
        assert registry.handle(api_event({"batch": judged_by_source(prefix)}, write_key=key))["statusCode"] == 200
    assert segment.received == []
    segment.recover()
    assert drain_all(registry)[0]["replayed"] == sum(len(ids) for ids in JUDGED_BY_SOURCE.values())
    assert {key: sorted(segment.message_ids(key)) for key in segment.by_key()} == JUDGED_BY_SOURCE
