"""The spool: its two stores (a folder, and S3 through the registry's client on moto's server), the stored format, and the drain against the fake Segment.

Every drain test runs on both stores. Two drains racing are checked both ways: forced to overlap (the second must
find the lock held and send nothing) and left to run freely (every messageId still arrives exactly once).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from fakes.delivery import arrivals
from fakes.s3 import AtomicConditionalPuts
from helpers import VALID_KEY, track
from reflekt_registry.config import Credentials, S3Endpoint, S3Location
from reflekt_registry.errors import DeliveryError, SpoolUnavailableError
from reflekt_registry.forwarder import SegmentClient, encode
from reflekt_registry.spool import (DRAIN_POLICY, DRAIN_WORKERS, LOCK_NAME, REJECTED_PREFIX, FolderStore, S3Store, Spool,
                                    Spooled, SpoolStore, drain_client, is_schedule, object_name, spooled_at)
from s3_support import BUCKET

PREFIX = "spool/"
OTHER_KEY = "pass-through-key"
# A drain's time limit here: the tests end long before it, since a drain stops once the spool is empty.
SECONDS = 60.0


def s3_client(moto_url: str) -> AtomicConditionalPuts:
    """The registry's own S3 client on moto's server, with S3's atomic conditional PUTs (see AtomicConditionalPuts)."""
    return AtomicConditionalPuts(S3Endpoint("us-east-1", moto_url), Credentials("testing", "testing"))


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SpoolStore:
    if request.param == "folder":
        return FolderStore(tmp_path / "spool")
    moto_url = request.getfixturevalue("moto_url")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # as Terraform makes it
    return S3Store(S3Location(BUCKET, "us-east-1", PREFIX), s3_client(moto_url))


def client(segment: Any) -> SegmentClient:
    replay = drain_client(segment.url)
    replay.sleep = lambda seconds: None
    return replay


def keep(spool: Spool, tag: str, events: int = 3, write_key: str = VALID_KEY, sent_at: str | None = None) -> list[str]:
    """Spools one batch as the forwarder would after a failed delivery; its messageIds."""
    ids = [f"{tag}-{i}" for i in range(events)]
    spool.keep(write_key, [encode(track(test_property="x", message_id=m)) for m in ids], sent_at, DeliveryError("Segment is down"))
    return ids


def arrived_once(segment: Any, ids: list[str], write_key: str = VALID_KEY) -> None:
    seen = arrivals(segment)
    assert {m: dict(seen.get(m, Counter())) for m in ids} == {m: {write_key: 1} for m in ids}


# -- the stores -----------------------------------------------------------------------------------------------------

def test_a_store_lists_batches_in_name_order_without_locks_or_rejected(store):
    names = [object_name(1_800_000_000.0 + i) for i in (3, 1, 2)]
    for name in names:
        store.put(name, b"x")
    store.put(LOCK_NAME, b"{}")
    store.put(REJECTED_PREFIX + object_name(1_700_000_000.0), b"x")
    assert store.list(10) == sorted(names)
    assert store.list(2) == sorted(names)[:2]


def test_a_conditional_put_writes_only_over_what_it_expects(store):
    """Absent (etag None) or still the ETag read: the primitive the drain lock rests on."""
    first = store.put_if("lock/drain", b"one", None)
    assert first is not None
    assert store.put_if("lock/drain", b"two", None) is None  # it exists
    assert store.put_if("lock/drain", b"two", '"not-its-etag"') is None
    second = store.put_if("lock/drain", b"two", first)
    assert second is not None and store.get("lock/drain") == (b"two", second)
    assert store.put_if("lock/drain", b"three", first) is None  # the ETag moved on
    store.delete("lock/drain")
    store.delete("lock/drain")  # deleting what is gone is fine
    assert store.get("lock/drain") is None
    assert store.put_if("lock/drain", b"four", second) is None  # If-Match on nothing fails


def test_a_store_that_cannot_be_used_raises_spool_unavailable(tmp_path, moto_url):
    (tmp_path / "file").write_text("")
    stores = [FolderStore(tmp_path / "file" / "spool"),
              S3Store(S3Location("no-such-bucket", "us-east-1", PREFIX), s3_client(moto_url))]
    for broken in stores:
        for call in (lambda: broken.put("a", b"x"), lambda: broken.put_if("a", b"x", None), lambda: broken.get("a")):
            with pytest.raises(SpoolUnavailableError):
                call()
    with pytest.raises(SpoolUnavailableError):
        stores[1].list(10)


# -- the stored format ----------------------------------------------------------------------------------------------

def test_object_names_sort_by_age_and_carry_it():
    names = [object_name(1_800_000_000.25), object_name(1_800_000_001.0), object_name(1_800_000_010.5)]
    assert sorted(names, reverse=True) == names[::-1]
    assert [spooled_at(name) for name in names] == [1_800_000_000.25, 1_800_000_001.0, 1_800_000_010.5]


def test_a_spooled_batch_keeps_its_bytes():
    lines = [encode(track(test_property="x\ny", message_id="m1")), encode({"type": "alias", "previousId": "\u2028"})]
    spooled = Spooled("wk", "2026-12-03T07:00:00.000Z", 1_800_000_000.5, lines)
    assert Spooled.decode(spooled.encode()) == spooled


def test_sent_at_moves_on_by_the_time_spent_in_the_spool():
    """So Segment's timestamp = receivedAt - (sentAt - originalTimestamp) is what it would have been without the outage."""
    spooled = Spooled("wk", "2026-12-03T07:00:00.000Z", 1_000.0, [])
    assert spooled.replay_sent_at(1_000.0 + 90.5) == "2026-12-03T07:01:30.500Z"
    assert spooled._replace(sent_at="2026-12-03T08:00:00+01:00").replay_sent_at(1_010.0) == "2026-12-03T07:00:10.000Z"
    assert spooled._replace(sent_at="yesterday").replay_sent_at(1_010.0) == "yesterday"
    assert spooled._replace(sent_at=None).replay_sent_at(1_010.0) is None


def test_the_schedule_is_told_apart_from_api_gateway():
    assert is_schedule({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert not is_schedule({"version": "2.0", "routeKey": "$default", "rawPath": "/v1/batch"})


# -- the drain ------------------------------------------------------------------------------------------------------

def test_the_drain_replays_every_batch_once_to_its_write_key_and_empties_the_spool(store, segment):
    spool = Spool(store)
    valid = keep(spool, "a") + keep(spool, "b")
    passed = keep(spool, "c", write_key=OTHER_KEY)
    report = spool.drain(client(segment), SECONDS)
    assert (report.replayed, report.rejected, report.objects_left, report.oldest_age) == (9, 0, 0, 0.0)
    arrived_once(segment, valid)
    arrived_once(segment, passed, OTHER_KEY)
    assert store.list(10) == [] and store.get(LOCK_NAME) is None
    assert spool.drain(client(segment), SECONDS) == report._replace(replayed=0)  # nothing left to send


def test_the_drain_takes_the_oldest_first_and_stops_while_segment_is_down(store, segment):
    """Segment failing after one round of workers: the oldest batches went, the rest wait, aged from the oldest left."""
    clock = iter(float(t) for t in range(1_000, 100_000))
    spool = Spool(store, clock=lambda: next(clock))
    batches = [keep(spool, f"b{i:02d}", events=1) for i in range(DRAIN_WORKERS + 4)]
    segment.accept(DRAIN_WORKERS)
    segment.fail(100, 503)
    report = spool.drain(client(segment), SECONDS)
    assert sorted(segment.message_ids(VALID_KEY)) == [ids[0] for ids in batches[:DRAIN_WORKERS]]
    assert (report.replayed, report.objects_left) == (DRAIN_WORKERS, 4)
    oldest_left = spooled_at(store.list(1)[0])
    assert report.oldest_age > 0 and store.list(10) and oldest_left == min(spooled_at(n) for n in store.list(10))


def test_the_replayed_sent_at_moves_on_by_the_wait(store, segment):
    now = [1_800_000_000.0]
    spool = Spool(store, clock=lambda: now[0])
    keep(spool, "late", sent_at="2027-01-15T08:00:00.000Z")
    now[0] += 120
    spool.drain(client(segment), SECONDS)
    [request] = segment.received
    assert request.body["sentAt"] == "2027-01-15T08:02:00.000Z"


def test_a_batch_segment_refuses_is_set_aside_and_counted(store, segment):
    """A poison batch (here one event over Segment's 32 KB, which the forwarder would never spool) gets a 400: it is
    moved to rejected/, never retried, and the batches around it are delivered."""
    spool = Spool(store)
    before = keep(spool, "before")
    spool.keep(VALID_KEY, [encode(track(test_property="x" * 40_000, message_id="poison"))], None, DeliveryError("down"))
    after = keep(spool, "after")
    report = spool.drain(client(segment), SECONDS)
    assert (report.replayed, report.rejected, report.objects_left) == (6, 1, 0)
    arrived_once(segment, before + after)
    [rejected] = [name for name in _all_names(store) if name.startswith(REJECTED_PREFIX)]
    body, _ = store.get(rejected)
    assert b'"messageId":"poison"' in body
    assert spool.drain(client(segment), SECONDS).rejected == 0  # set aside for good


def test_an_unreadable_object_is_set_aside(store, segment):
    spool = Spool(store)
    store.put(object_name(1_800_000_000.0), b"not a spooled batch")
    ids = keep(spool, "fine")
    report = spool.drain(client(segment), SECONDS)
    assert (report.replayed, report.objects_left) == (3, 0)
    arrived_once(segment, ids)


def test_a_drain_with_no_time_left_sends_nothing_but_reports_the_age(store, segment):
    """No batch is started that could not finish within the caller's time (the Lambda's remaining time)."""
    now = [1_800_000_000.0]
    spool = Spool(store, clock=lambda: now[0])
    keep(spool, "waiting")
    now[0] += 42
    report = spool.drain(client(segment), DRAIN_POLICY.budget)
    assert (report.replayed, report.objects_left, report.oldest_age) == (0, 1, 42.0)
    assert segment.received == []


# -- two drains -----------------------------------------------------------------------------------------------------

class Paused(SegmentClient):
    """A drain client whose first post waits until the test lets it go: holds drain A mid-flight."""

    def __init__(self, host: str):
        super().__init__(host, DRAIN_POLICY)
        self.started = threading.Event()
        self.go = threading.Event()

    def post_batch(self, write_key: str, lines: Any, sent_at: str | None) -> None:
        self.started.set()
        assert self.go.wait(30), "the test never released the paused drain"
        super().post_batch(write_key, lines, sent_at)


def test_a_second_drain_finds_the_lock_held_and_sends_nothing(store, segment):
    spool = Spool(store)
    ids = [m for tag in "abc" for m in keep(spool, tag)]
    paused = Paused(segment.url)
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(report=spool.drain(paused, SECONDS)))
    thread.start()
    assert paused.started.wait(30)
    second = Spool(store).drain(client(segment), SECONDS)
    paused.go.set()
    thread.join(30)
    assert second.locked_out and second.replayed == 0 and second.objects_left == 3
    assert first["report"].replayed == 9
    arrived_once(segment, ids)


def test_drains_running_at_once_deliver_each_event_exactly_once(store, segment):
    """Left to interleave as they will, several drains on one spool: never a second copy, nothing left behind."""
    spool = Spool(store)
    ids = [m for i in range(3 * DRAIN_WORKERS) for m in keep(spool, f"r{i:02d}", events=2)]
    segment.slow(times=DRAIN_WORKERS, seconds=0.05)  # so the first drain is still sending while the others start
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda: reports.append(Spool(store).drain(client(segment), SECONDS))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    while store.list(1):  # a drain that was locked out leaves the rest to the next scheduled one
        spool.drain(client(segment), SECONDS)
    arrived_once(segment, ids)
    assert sum(report.replayed for report in reports) <= len(ids)


def test_a_lock_left_by_a_crashed_drain_is_taken_over_once_it_expires(store, segment):
    now = [1_800_000_000.0]
    spool = Spool(store, clock=lambda: now[0])
    ids = keep(spool, "stranded")
    store.put(LOCK_NAME, json.dumps({"until": now[0] + 100}).encode())
    assert spool.drain(client(segment), SECONDS).locked_out  # still live
    now[0] += 101
    report = spool.drain(client(segment), SECONDS)
    assert (report.locked_out, report.replayed) == (False, 3)
    arrived_once(segment, ids)
    assert store.get(LOCK_NAME) is None


def _all_names(store: SpoolStore) -> list[str]:
    """Every object in the store, rejected ones included."""
    if isinstance(store, FolderStore):
        return sorted(path.relative_to(store.root).as_posix() for path in store.root.rglob("*") if path.is_file()
                      and not path.name.startswith("."))
    assert isinstance(store, S3Store)
    return sorted(item.key[len(PREFIX):] for item in store.client.list(BUCKET, PREFIX))
