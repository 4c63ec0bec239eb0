"""Delivering events within Segment's limits: packing, the retry policy, the HTTP client and the two destinations."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import basic
from reflekt_registry.config import Settings
from reflekt_registry.errors import BatchRefusedError, DeliveryError
from reflekt_registry.forwarder import (MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES, Consignment, Forwarder, JsonlFile,
                                        SegmentClient, SegmentSource, _batch_body, encode, pack)
from reflekt_registry.retry import RetryPolicy
from reflekt_registry.spool import FolderStore, Spool, Spooled
from reflekt_registry.validator import Verdict, Violation, annotate
from test_retry import expected_backoff

KEY = "source-write-key"
VALID_KEY = "valid-source-key"
INVALID_KEY = "invalid-source-key"
SENT_AT = "2026-11-26T18:00:00.000Z"
# Segment's own limit on a request body, above the registry's MAX_BATCH_BYTES.
SEGMENT_BATCH_LIMIT = 500 * 1024


def event(message_id: str = "m-1", **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Test Event", "userId": "u1", "messageId": message_id, "properties": properties}


def lines_of(count: int) -> list[bytes]:
    return [encode(event(f"m-{i}")) for i in range(count)]


# -- pack() -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("count,sizes", [
    (0, []),
    (1, [1]),
    (MAX_BATCH_EVENTS, [MAX_BATCH_EVENTS]),
    (MAX_BATCH_EVENTS + 1, [MAX_BATCH_EVENTS, 1]),
    (2 * MAX_BATCH_EVENTS, [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS]),
    (2 * MAX_BATCH_EVENTS + 1, [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 1]),
])
def test_pack_caps_events_per_batch(count, sizes):
    """A batch holds at most 2,500 events (Segment answers 200 but drops the rest)."""
    assert [len(batch) for batch in pack([b"{}"] * count)] == sizes


def test_pack_fills_a_batch_to_exactly_the_byte_cap():
    """Events whose bytes plus separators add up to exactly MAX_BATCH_BYTES share one batch; one byte more splits it."""
    count = 1_000
    assert MAX_BATCH_BYTES % count == 0
    width = MAX_BATCH_BYTES // count - 1  # each event costs its length plus one separator
    exact = [b"x" * width] * count
    assert [len(batch) for batch in pack(exact)] == [count]
    over = exact[:-1] + [b"x" * (width + 1)]
    assert [len(batch) for batch in pack(over)] == [count - 1, 1]


def test_a_full_batch_fits_segments_request_limit():
    """The envelope around a batch packed to the byte cap leaves it under Segment's 500 KB."""
    lines = [b'{"e":"' + b"x" * (MAX_EVENT_BYTES - 10) + b'"}'] * 40
    for batch in pack(lines):
        assert len(_batch_body(batch, SENT_AT)) <= SEGMENT_BATCH_LIMIT


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=2, max_value=MAX_EVENT_BYTES), max_size=80))
def test_pack_keeps_every_event_in_order_within_both_limits(widths):
    """Batches are the input split in order, none empty, none over the event or byte cap."""
    lines = [str(i).encode().ljust(width, b" ") for i, width in enumerate(widths)]
    batches = pack(lines)
    assert [line for batch in batches for line in batch] == lines
    for batch in batches:
        assert 1 <= len(batch) <= MAX_BATCH_EVENTS
        assert sum(len(line) + 1 for line in batch) <= MAX_BATCH_BYTES


# -- the batch body -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent_at", [None, SENT_AT, 'with "quotes" and \\ backslash', "\u00e9\u2028"])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_batch_body_is_json_with_sent_at_only_when_given(sent_at, count):
    """The body is {"batch": [...]} with the events as packed, plus sentAt only when the client sent one."""
    events = [event(f"m-{i}", n=i) for i in range(count)]
    document = json.loads(_batch_body([encode(e) for e in events], sent_at))
    expected: dict[str, Any] = {"batch": events}
    if sent_at is not None:
        expected["sentAt"] = sent_at
    assert document == expected


def test_encode_survives_lone_surrogates():
    """A lone surrogate (valid JSON text, invalid UTF-8) is escaped, not an encoding error."""
    line = encode(event(name="\ud800"))
    assert json.loads(line)["properties"]["name"] == "\ud800"
    assert line.isascii()


# -- SegmentClient against the fake Segment ------------------------------------------------------------------------

EVENTS = [event("m-1", n=1), event("m-2", n=2)]
LINES = [encode(e) for e in EVENTS]


def client_for(segment, clock, **policy: Any) -> SegmentClient:
    return SegmentClient(segment.url, policy=RetryPolicy(**policy), clock=clock, sleep=clock.sleep)


def test_a_batch_is_posted_with_the_destination_key(segment, clock):
    """One POST to /v1/batch, Basic auth of the destination's key, the events as given, sentAt passed on."""
    client_for(segment, clock).post_batch(KEY, LINES, SENT_AT)
    [request] = segment.received
    assert request.path == "/v1/batch"
    assert request.headers["Authorization"] == basic(KEY)
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"batch": EVENTS, "sentAt": SENT_AT}
    assert clock.sleeps == []


def test_a_server_error_is_retried_after_a_backoff(segment, clock):
    """500 then 200: the batch is delivered once, after one backoff sleep."""
    segment.fail(times=1, status=500)
    client = client_for(segment, clock)
    client.post_batch(KEY, LINES, None)
    assert segment.message_ids(KEY) == ["m-1", "m-2"]
    assert segment.attempts == 2
    [slept] = clock.sleeps
    wait = expected_backoff(client.policy, 0)
    assert wait <= slept <= wait * (1 + client.policy.jitter)


def test_retry_after_from_segment_is_slept(segment, clock):
    """429 with Retry-After: 2 waits exactly 2 s before the retry."""
    segment.fail(times=1, status=429, retry_after="2")
    client_for(segment, clock).post_batch(KEY, LINES, None)
    assert clock.sleeps == [2.0]
    assert segment.message_ids(KEY) == ["m-1", "m-2"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 501, 505])
def test_a_permanent_refusal_fails_at_once(segment, clock, status):
    """A status no retry can fix raises DeliveryError after one attempt and no sleep."""
    segment.fail(times=5, status=status)
    with pytest.raises(DeliveryError, match=f"HTTP {status}"):
        client_for(segment, clock).post_batch(KEY, LINES, None)
    assert segment.attempts == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status,refused", [(400, True), (413, True), (501, False), (505, False)])
def test_a_4xx_refusal_says_the_batch_itself_is_refused(segment, clock, status, refused):
    """The spool's drain sets aside a batch Segment refused with a 4xx; a 5xx it does not retry may still clear up."""
    segment.fail(times=1, status=status)
    with pytest.raises(DeliveryError) as raised:
        client_for(segment, clock).post_batch(KEY, LINES, None)
    assert isinstance(raised.value, BatchRefusedError) is refused


def test_a_persistent_failure_gives_up_after_the_allowed_attempts(segment, clock):
    """Segment answering 503 every time: policy.attempts tries, a sleep between each, then DeliveryError."""
    segment.fail(times=10, status=503)
    client = client_for(segment, clock, attempts=4)
    with pytest.raises(DeliveryError, match="HTTP 503"):
        client.post_batch(KEY, LINES, None)
    assert segment.attempts == 4
    assert len(clock.sleeps) == 3
    assert segment.received == []


def test_a_retry_after_beyond_the_budget_is_not_slept(segment, clock):
    """Retry-After longer than what is left of the budget: give up now, and hand the header on for the client."""
    segment.fail(times=5, status=429, retry_after="30")
    with pytest.raises(DeliveryError) as raised:
        client_for(segment, clock, budget=6.0).post_batch(KEY, LINES, None)
    assert clock.sleeps == []
    assert segment.attempts == 1
    assert raised.value.retry_after == "30"


def test_no_retry_starts_past_the_budget(segment, clock):
    """Attempts stop when the next backoff would end past the budget, even with attempts to spare."""
    segment.fail(times=10, status=500)
    with pytest.raises(DeliveryError):
        client_for(segment, clock, attempts=10, budget=1.0, backoff_base=0.4, jitter=0).post_batch(KEY, LINES, None)
    assert clock.sleeps == [pytest.approx(0.4)]  # 0.4 then 0.8 more would end at 1.2 s, past the 1 s budget
    assert segment.attempts == 2


class _Answer:
    def __init__(self, status: int):
        self.status = status
        self.headers: dict[str, str] = {}


class RecordingPool:
    """A connection pool that answers every request with one status and records the timeouts it was given."""

    def __init__(self, status: int):
        self.status = status
        self.timeouts: list[urllib3.Timeout] = []
        self.urls: list[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        self.timeouts.append(kwargs["timeout"])
        self.urls.append(url)
        return _Answer(self.status)


@pytest.mark.parametrize("configured", ["https://events.eu1.segmentapis.com", "https://events.eu1.segmentapis.com/"])
def test_the_eu_host_gets_segments_batch_path(configured, clock):
    """EU workspaces must post to events.eu1.segmentapis.com/v1/batch: api.segment.io would drop their events silently."""
    pool = RecordingPool(200)
    host = Settings.from_env({"SEGMENT_API_HOST": configured}, local=True).segment_api_host
    SegmentClient(host, clock=clock, sleep=clock.sleep, pool=pool).post_batch(KEY, LINES, None)
    assert pool.urls == ["https://events.eu1.segmentapis.com/v1/batch"]


def test_each_attempts_timeouts_fit_in_what_is_left_of_the_budget(clock):
    """Connect and read timeouts are cut to the budget remaining, so a slow Segment cannot overrun it."""
    pool = RecordingPool(503)
    policy = RetryPolicy(attempts=10, budget=1.0, connect_timeout=2.0, read_timeout=3.0, backoff_base=0.4, jitter=0)
    client = SegmentClient("http://segment.invalid", policy=policy, clock=clock, sleep=clock.sleep, pool=pool)
    with pytest.raises(DeliveryError):
        client.post_batch(KEY, LINES, None)
    assert [t.read_timeout for t in pool.timeouts] == pytest.approx([1.0, 0.6])
    assert [t.connect_timeout for t in pool.timeouts] == pytest.approx([1.0, 0.6])


def test_a_hanging_segment_times_out_within_the_attempts(segment, clock):
    """Segment accepting the request but never answering: each attempt times out, and the tries are bounded."""
    segment.hang(times=10, seconds=1.0)
    with pytest.raises(DeliveryError, match="ReadTimeoutError"):
        client_for(segment, clock, attempts=3, read_timeout=0.2).post_batch(KEY, LINES, None)
    assert segment.attempts == 3
    assert segment.received == []


def test_a_dropped_connection_is_retried(segment, clock):
    """Segment closing the connection without an answer is retried on a new connection, and delivered once."""
    segment.close(times=1)
    client_for(segment, clock).post_batch(KEY, LINES, None)
    assert segment.attempts == 2
    assert segment.message_ids(KEY) == ["m-1", "m-2"]


def test_posts_reuse_one_connection(segment, clock):
    """Successive posts from one client go over a single kept-alive connection."""
    client = client_for(segment, clock)
    for _ in range(3):
        client.post_batch(KEY, LINES, None)
    assert len(segment.received) == 3
    assert segment.connections == 1


# -- Forwarder -----------------------------------------------------------------------------------------------------

class RecordingDestination:
    """A destination that keeps what it is sent; it can fail, or wait at a barrier shared with another."""

    def __init__(self, barrier: threading.Barrier | None = None, error: Exception | None = None):
        self.batches: list[tuple[list[bytes], str | None]] = []
        self.barrier = barrier
        self.error = error
        self.write_key = f"key-{id(self)}"

    def send(self, lines: Sequence[bytes], sent_at: str | None) -> None:
        if self.barrier:
            self.barrier.wait()
        if self.error:
            raise self.error
        self.batches.append((list(lines), sent_at))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for lines, _ in self.batches for line in lines]

    @property
    def lines(self) -> list[bytes]:
        return [line for lines, _ in self.batches for line in lines]


def invalid_event(message_id: str, **properties: Any) -> dict[str, Any]:
    verdict = Verdict("t/Thing/1-0.json", (Violation("$.properties.n", "type", "$.properties.n must be integer"),))
    return annotate(event(message_id, **properties), verdict)


def deliver(valid: Any, invalid: Any, valid_events: list, invalid_events: list, sent_at: str | None,
            spool: Spool | None = None) -> None:
    """One consignment: a request's events for one valid and one invalid destination."""
    Forwarder(spool).deliver([Consignment(valid, invalid, valid_events, invalid_events)], sent_at)


def test_each_destination_gets_its_events_and_sent_at():
    """Valid events go to the valid destination and invalid ones to the other, with the client's sentAt."""
    valid, invalid = RecordingDestination(), RecordingDestination()
    deliver(valid, invalid, [event("v-1"), event("v-2")], [invalid_event("i-1")], SENT_AT)
    assert [e["messageId"] for e in valid.events] == ["v-1", "v-2"]
    assert [e["messageId"] for e in invalid.events] == ["i-1"]
    assert {sent_at for _, sent_at in valid.batches + invalid.batches} == {SENT_AT}


@pytest.mark.parametrize("valid_count,invalid_count", [(0, 0), (2, 0), (0, 2)])
def test_a_destination_with_nothing_to_send_is_not_called(valid_count, invalid_count):
    """No empty batches: a side with no events makes no request."""
    valid, invalid = RecordingDestination(), RecordingDestination()
    deliver(valid, invalid, [event(f"v-{i}") for i in range(valid_count)],
                                      [invalid_event(f"i-{i}") for i in range(invalid_count)], None)
    assert len(valid.batches) == (1 if valid_count else 0)
    assert len(invalid.batches) == (1 if invalid_count else 0)


def test_both_destinations_are_sent_to_at_once():
    """The two posts run concurrently: each destination waits for the other at a barrier only both can pass."""
    barrier = threading.Barrier(2, timeout=5)
    valid, invalid = RecordingDestination(barrier), RecordingDestination(barrier)
    deliver(valid, invalid, [event("v-1")], [invalid_event("i-1")], None)
    assert len(valid.batches) == len(invalid.batches) == 1


@pytest.mark.parametrize("failing", ["valid", "invalid"])
def test_a_failure_on_either_side_fails_the_delivery(failing):
    """If either destination fails, deliver() raises its DeliveryError; the other side is still delivered."""
    error = DeliveryError("Segment said no")
    sides = {"valid": RecordingDestination(), "invalid": RecordingDestination()}
    sides[failing].error = error
    with pytest.raises(DeliveryError) as raised:
        deliver(sides["valid"], sides["invalid"], [event("v-1")], [invalid_event("i-1")], None)
    assert raised.value is error
    other = sides["invalid" if failing == "valid" else "valid"]
    assert len(other.batches) == 1


def test_a_failure_of_the_only_batch_fails_the_delivery():
    """The single-batch shortcut raises the destination's error too."""
    with pytest.raises(DeliveryError):
        deliver(RecordingDestination(error=DeliveryError("no")), RecordingDestination(), [event()], [], None)


@pytest.mark.parametrize("failing", ["valid", "invalid"])
def test_with_a_spool_a_failed_side_is_kept_under_its_write_key_and_the_delivery_succeeds(tmp_path, failing):
    """The batch Segment did not take is spooled, addressed to its destination's key; the other side is delivered."""
    sides = {"valid": RecordingDestination(), "invalid": RecordingDestination()}
    sides[failing].error = DeliveryError("Segment said no")
    spool = Spool(FolderStore(tmp_path))
    deliver(sides["valid"], sides["invalid"], [event("v-1")], [invalid_event("i-1")], SENT_AT, spool)
    [name] = spool.store.list(10)
    kept = Spooled.decode(spool.store.get(name)[0])
    assert (kept.write_key, kept.sent_at) == (sides[failing].write_key, SENT_AT)
    assert [json.loads(line)["messageId"] for line in kept.lines] == ["v-1" if failing == "valid" else "i-1"]
    assert len(sides["invalid" if failing == "valid" else "valid"].batches) == 1


def test_with_the_spool_failing_too_the_delivery_error_reaches_the_client(tmp_path):
    """Only then does the request fail: the client gets Segment's error (its 503 and Retry-After)."""
    (tmp_path / "file").write_text("")
    error = DeliveryError("Segment said no")
    spool = Spool(FolderStore(tmp_path / "file" / "spool"))
    with pytest.raises(DeliveryError) as raised:
        deliver(RecordingDestination(error=error), RecordingDestination(), [event()], [], None, spool)
    assert raised.value is error


def test_an_oversized_valid_event_reaches_the_invalid_side_as_a_stand_in():
    """A valid event Segment would refuse for its size becomes a small invalid stand-in keeping its identity."""
    valid, invalid = RecordingDestination(), RecordingDestination()
    big = event("big-1", blob="x" * MAX_EVENT_BYTES)
    deliver(valid, invalid, [big, event("v-1")], [], None)
    assert [e["messageId"] for e in valid.events] == ["v-1"]
    [stand_in] = invalid.events
    assert stand_in["messageId"] == "big-1"
    assert "blob" not in stand_in["properties"]
    assert stand_in["context"]["reflekt"]["violations"][0]["keyword"] == "maxSize"
    assert all(len(line) <= MAX_EVENT_BYTES for line in invalid.lines)


def test_an_oversized_invalid_event_keeps_its_violations():
    """An invalid event that is also too big is shrunk and still says what was wrong with it."""
    valid, invalid = RecordingDestination(), RecordingDestination()
    deliver(valid, invalid, [], [invalid_event("i-1", n="x" * MAX_EVENT_BYTES)], None)
    [stand_in] = invalid.events
    record = stand_in["context"]["reflekt"]
    assert record["schemaId"] == "t/Thing/1-0.json"
    assert [v["keyword"] for v in record["violations"]] == ["maxSize", "type"]


@pytest.mark.parametrize("text", ["x", "\u00e9", "\U0001f600"], ids=["ascii", "latin-1", "emoji"])
def test_every_line_sent_fits_segments_event_limit(text):
    """However an oversized event's violations are spelled, no line sent is over 32 KB (a 400 loses the whole batch)."""
    # Violations whose paths and messages quote the client's own property names, as fastjsonschema's do.
    names = [f"{text * 300}{i}" for i in range(40)]
    violations = tuple(Violation(f"$.properties.{name}", "type", f"$.properties.{name} must be integer") for name in names)
    oversized = annotate(event("big-1", **{name: "x" for name in names}), Verdict("t/Thing/1-0.json", violations))
    valid, invalid = RecordingDestination(), RecordingDestination()
    deliver(valid, invalid, [], [oversized, invalid_event("i-2")], None)
    assert [e["messageId"] for e in invalid.events] == ["i-2", "big-1"]
    sizes = [len(line) for line in invalid.lines]
    assert max(sizes) <= MAX_EVENT_BYTES


def test_a_large_request_is_split_into_batches_in_order():
    """2,501 valid events go out as two batches, 2,500 then 1, in the order they came."""
    valid, invalid = RecordingDestination(), RecordingDestination()
    events = [event(f"m-{i}") for i in range(MAX_BATCH_EVENTS + 1)]
    deliver(valid, invalid, events, [], None)
    assert [len(lines) for lines, _ in valid.batches] == [MAX_BATCH_EVENTS, 1]
    assert [e["messageId"] for e in valid.events] == [e["messageId"] for e in events]


def test_forwarder_delivers_to_two_segment_sources(segment, clock):
    """Through the real client: valid events arrive under the valid key, invalid ones under the invalid key."""
    client = SegmentClient(segment.url, clock=clock, sleep=clock.sleep)
    deliver(SegmentSource(client, VALID_KEY), SegmentSource(client, INVALID_KEY), [event("v-1"), event("v-2")],
            [invalid_event("i-1")], SENT_AT)
    assert segment.message_ids(VALID_KEY) == ["v-1", "v-2"]
    assert segment.message_ids(INVALID_KEY) == ["i-1"]
    assert {request.body["sentAt"] for request in segment.received} == {SENT_AT}


def test_consignments_for_one_destination_share_its_batches():
    """Events for one destination go out together whichever consignment brought them: one post, not one each."""
    shared_invalid, web, other = RecordingDestination(), RecordingDestination(), RecordingDestination()
    Forwarder().deliver([Consignment(web, shared_invalid, [event("v-1")], [invalid_event("i-1")]),
                         Consignment(other, shared_invalid, [event("v-2")], [invalid_event("i-2")])], None)
    assert [[e["messageId"] for e in d.events] for d in (web, other)] == [["v-1"], ["v-2"]]
    assert len(shared_invalid.batches) == 1
    assert [e["messageId"] for e in shared_invalid.events] == ["i-1", "i-2"]


def test_many_write_keys_share_one_client_and_its_connections(segment, clock):
    """There is no pool per key: 50 write keys, posted in turn through one client, reuse one connection."""
    client = SegmentClient(segment.url, clock=clock, sleep=clock.sleep)
    keys = [f"source-key-{i}" for i in range(50)]
    for key in keys:
        deliver(SegmentSource(client, key), SegmentSource(client, INVALID_KEY), [event(f"m-{key}")], [], None)
    assert [segment.message_ids(key) for key in keys] == [[f"m-{key}"] for key in keys]
    assert segment.connections == 1


# -- JsonlFile -----------------------------------------------------------------------------------------------------

def test_jsonl_file_appends_one_event_per_line(tmp_path):
    """Each send appends its events, one JSON object per line, creating the folder if needed."""
    path = tmp_path / "events" / "valid.jsonl"
    destination = JsonlFile(path)
    destination.send([encode(event("m-1")), encode(event("m-2", note="line\nbreak"))], SENT_AT)
    destination.send([encode(event("m-3"))], None)
    rows = path.read_text().splitlines()
    assert [json.loads(row)["messageId"] for row in rows] == ["m-1", "m-2", "m-3"]
    assert json.loads(rows[1])["properties"]["note"] == "line\nbreak"
