"""The spool: keeps judged events Segment did not take, durably, and replays them once Segment is back.

A request whose batch Segment does not accept within the forwarder's budget is written here, one object per
batch, and the client is told 200: its events are "durably spooled". The drain (the Lambda invoked by an
EventBridge schedule, or the local server's background thread) sends the objects to Segment oldest first, with
their messageIds unchanged, and deletes each object only after Segment's 200.

Storage is a small `SpoolStore`: an S3 prefix in Lambda, a folder locally. Inside it:

    <UTC time>Z-<random>.jsonl   a spooled batch: a header line (write key, sentAt, when spooled), then one event per line
    lock/drain                   the drain lock (below)
    rejected/<object name>       a batch Segment refused with a 4xx, set aside and never retried

Two drains at once. A drain first takes the lock: it creates `lock/drain` only if absent (S3's conditional PUT
with If-None-Match: *, or O_EXCL under a file lock locally); a second drain finds it held and does nothing. The
lock records until when its holder may run: the Lambda cannot outlive its timeout, so a lock past that time was
left by a drain that crashed, and is taken over by a conditional PUT with If-Match on the stale lock's ETag, which
only one contender wins. The holder deletes the lock when it is done. So two drains never send the same object
at once; the one duplicate left is a drain that crashed between Segment's 200 and deleting the object, whose
successor re-sends that batch with the same messageIds, which Segment dedupes.

Spooled events are personal data: they are never logged (only counts, object names and a hash of the write
key), and in S3 they are encrypted at rest by the bucket's default encryption.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from . import connections
from .config import S3Location
from .errors import BatchRefusedError, DeliveryError, S3Error, SpoolUnavailableError
from .forwarder import SegmentClient, pack
from .log import get_logger
from .metrics import NO_METRICS, Metrics
from .retry import RetryPolicy
from .s3 import BucketPrefix, S3Client

OBJECT_SUFFIX = ".jsonl"
# What a spooled batch is, for whoever opens one in the S3 console: JSON Lines.
CONTENT_TYPE = "application/jsonl"
# Fixed-width UTC time first, so that name order is age order and listing returns the oldest first.
OBJECT_NAME = re.compile(r"(\d{8}T\d{6}\.\d{6})Z-[0-9a-f]{32}\.jsonl")
TIME_FORMAT = "%Y%m%dT%H%M%S"
LOCK_NAME = "lock/drain"
REJECTED_PREFIX = "rejected/"
# Objects a drain lists at most: one S3 LIST page. A drain delivers fewer than this in its time anyway.
MAX_LISTED_OBJECTS = 1000
# Objects replayed at once: the round trips to S3 and Segment dominate, and a 10 s Lambda gets a few seconds.
DRAIN_WORKERS = 8
# A drain's own retries are short: Segment being down is the reason objects wait, and the next drain is at
# most a minute away. Two quick attempts keep a single flaky answer from ending a drain.
DRAIN_POLICY = RetryPolicy(attempts=2, budget=3.0, connect_timeout=1.0, read_timeout=2.0)
# Added to how long a drain may run when it records the lock's expiry: clock skew between invocations.
LOCK_MARGIN_SECONDS = 5.0

log = get_logger()


class SpoolStore(Protocol):
    """Named objects in a folder or under an S3 prefix. Every method raises SpoolUnavailableError on failure."""

    def put(self, name: str, body: bytes) -> None:
        """Writes the object whole: a reader sees all of it or nothing."""

    def put_if(self, name: str, body: bytes, etag: str | None) -> str | None:
        """Writes only if the object is absent (etag None) or still has `etag`; the new ETag, or None if not."""

    def get(self, name: str) -> tuple[bytes, str] | None:
        """The body and ETag, or None when there is no such object."""

    def list(self, limit: int) -> list[str]:
        """Names of at most `limit` spooled batches, in name order; locks and rejected batches are left out."""

    def delete(self, name: str) -> None:
        """Removes the object; removing one that is gone is not an error."""


class FolderStore:
    """The local server's spool: files in a folder; conditional writes hold an advisory lock on `.lock`."""

    def __init__(self, root: Path):
        self.root = root

    def __str__(self) -> str:
        return f"folder {self.root}"

    def put(self, name: str, body: bytes) -> None:
        with self._io(name):
            self._write(name, body)

    def put_if(self, name: str, body: bytes, etag: str | None) -> str | None:
        import fcntl  # POSIX only, like every platform the local server supports

        with self._io(name):
            self.root.mkdir(parents=True, exist_ok=True)
            with (self.root / ".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                current = self._read(name)
                if (current is None) != (etag is None) or (current is not None and current[1] != etag):
                    return None
                self._write(name, body)
                return _md5(body)

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._io(name):
            return self._read(name)

    def list(self, limit: int) -> list[str]:
        with self._io("."):
            if not self.root.is_dir():
                return []
            return sorted(entry.name for entry in os.scandir(self.root) if OBJECT_NAME.fullmatch(entry.name))[:limit]

    def delete(self, name: str) -> None:
        with self._io(name):
            (self.root / name).unlink(missing_ok=True)

    def _read(self, name: str) -> tuple[bytes, str] | None:
        try:
            body = (self.root / name).read_bytes()
        except FileNotFoundError:
            return None
        return body, _md5(body)

    def _write(self, name: str, body: bytes) -> None:
        # Written aside, flushed to disk, then renamed into place: a crash leaves the old object or the new one.
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".writing-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @contextmanager
    def _io(self, name: str) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            raise SpoolUnavailableError(f"cannot use {self.root / name}: {e.strerror or e}") from e


class S3Store(BucketPrefix):
    """The Lambda's spool: objects under a prefix of the registry bucket, encrypted by the bucket's default.

    It shares the registry's S3 client: a spool write happens after Segment's 6 s budget ran out, and the client's
    3 s budget (s3.S3_RETRY_POLICY) still leaves the answer inside the Lambda's 10 s timeout.
    """

    def put(self, name: str, body: bytes) -> None:
        with self._call(name):
            self.client.put(self.location.bucket, self.location.prefix + name, body, CONTENT_TYPE)

    def put_if(self, name: str, body: bytes, etag: str | None) -> str | None:
        # The client answers None when the condition fails: another drain holds or just took the lock.
        condition = {"if_none_match": "*"} if etag is None else {"if_match": etag}
        with self._call(name):
            return self.client.put(self.location.bucket, self.location.prefix + name, body, CONTENT_TYPE, **condition)

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._call(name):
            found = self.client.get(self.location.bucket, self.location.prefix + name)
        return None if found is None else (found.body, found.etag)

    def list(self, limit: int) -> list[str]:
        # The delimiter keeps lock/ and rejected/ out: however many refused batches wait there, one page is read.
        prefix = self.location.prefix
        with self._call(""):
            listed = self.client.list(self.location.bucket, prefix, page_keys=min(limit, MAX_LISTED_OBJECTS), delimiter="/")
            names = (item.key[len(prefix):] for item in listed)
            return list(islice((name for name in names if OBJECT_NAME.fullmatch(name)), limit))

    def delete(self, name: str) -> None:
        with self._call(name):
            self.client.delete(self.location.bucket, self.location.prefix + name)

    @contextmanager
    def _call(self, name: str) -> Iterator[None]:
        """Turns the S3 client's errors into SpoolUnavailableError."""
        try:
            yield
        except S3Error as e:
            raise SpoolUnavailableError(f"cannot use s3://{self.location.bucket}/{self.location.prefix}{name}: {e}") from e


class Spooled(NamedTuple):
    """One spooled batch as stored: where it goes, the client's sentAt, when it was spooled, and its events."""

    write_key: str
    sent_at: str | None
    spooled_at: float  # seconds since the epoch
    lines: list[bytes]  # serialised events, exactly as the forwarder packed them

    def encode(self) -> bytes:
        header = json.dumps({"format": 1, "writeKey": self.write_key, "sentAt": self.sent_at, "spooledAt": self.spooled_at})
        # Compact JSON never holds a raw newline, so one event per line is unambiguous.
        return b"\n".join([header.encode(), *self.lines]) + b"\n"

    @classmethod
    def decode(cls, body: bytes) -> Spooled:
        """Raises ValueError when the body is not a spooled batch this version wrote."""
        header_line, *lines = body.rstrip(b"\n").split(b"\n")
        header = json.loads(header_line)
        if not isinstance(header, dict) or header.get("format") != 1 or not isinstance(header.get("writeKey"), str):
            raise ValueError("not a spooled batch")
        return cls(header["writeKey"], header.get("sentAt"), float(header["spooledAt"]), lines)

    def replay_sent_at(self, now: float) -> str | None:
        """sentAt moved on by the time spent in the spool.

        Segment corrects client clock skew with timestamp = receivedAt - (sentAt - originalTimestamp); replaying
        the client's own sentAt minutes later would move every event's timestamp by the outage. Shifting sentAt by
        the wait keeps that difference as it was when the client sent. An unreadable sentAt is passed on unchanged.
        """
        if self.sent_at is None:
            return None
        try:
            sent = datetime.fromisoformat(self.sent_at)
        except (TypeError, ValueError):
            return self.sent_at
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=timezone.utc)
        shifted = sent.astimezone(timezone.utc) + timedelta(seconds=max(0.0, now - self.spooled_at))
        return shifted.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Outcome(Enum):
    REPLAYED = "replayed"  # Segment took it; the object is deleted
    REJECTED = "rejected"  # Segment refused it (4xx) or it is unreadable; moved to rejected/
    GONE = "gone"  # another drain delivered it first
    FAILED = "failed"  # Segment is still not taking events; the object stays for the next drain


class DrainReport(NamedTuple):
    replayed: int = 0  # events Segment took
    rejected: int = 0  # events set aside
    objects_left: int = 0  # of those listed, still spooled
    oldest_age: float = 0.0  # seconds the oldest object still spooled has waited; 0 when none is
    locked_out: bool = False  # another drain held the lock


def object_name(now: float) -> str:
    import uuid  # this module's imports are paid on every cold start; uuid and the rest only once Segment fails

    seconds, micros = divmod(int(now * 1_000_000), 1_000_000)
    return f"{time.strftime(TIME_FORMAT, time.gmtime(seconds))}.{micros:06d}Z-{uuid.uuid4().hex}{OBJECT_SUFFIX}"


def spooled_at(name: str) -> float:
    """When an object was spooled, from its name (seconds since the epoch)."""
    match = OBJECT_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a spool object name")
    stamp, fraction = match.group(1).split(".")
    return calendar.timegm(time.strptime(stamp, TIME_FORMAT)) + int(fraction) / 1e6


def key_hash(write_key: str) -> str:
    """Names a write key in logs without revealing it."""
    import hashlib

    return hashlib.sha256(write_key.encode()).hexdigest()[:12]


def _md5(body: bytes) -> str:
    import hashlib

    return '"' + hashlib.md5(body).hexdigest() + '"'  # S3's ETag of a single-part upload


class Spool:
    """Keeps undelivered batches in a store and drains them to Segment."""

    def __init__(self, store: SpoolStore, metrics: Metrics = NO_METRICS, clock: Callable[[], float] = time.time):
        self.store = store
        self.metrics = metrics
        self.clock = clock  # wall-clock time: locks and ages are compared across invocations and machines

    def keep(self, write_key: str, lines: Sequence[bytes], sent_at: str | None, failure: DeliveryError) -> None:
        """Spools a batch Segment did not take; if the spool fails too, raises `failure` (the client's 503)."""
        now = self.clock()
        name = object_name(now)
        try:
            self.store.put(name, Spooled(write_key, sent_at, now, list(lines)).encode())
        except SpoolUnavailableError as e:
            log.error("cannot spool events Segment did not take", extra={"fields": {
                "events": len(lines), "write_key_sha256": key_hash(write_key), "failure": str(failure), "error": str(e)}})
            raise failure from e
        log.warning("spooled events Segment did not take", extra={"fields": {
            "events": len(lines), "object": name, "write_key_sha256": key_hash(write_key), "failure": str(failure)}})
        self.metrics.spooled(len(lines))

    def drain(self, client: SegmentClient, seconds: float) -> DrainReport:
        """Replays spooled batches, oldest first, for at most `seconds` (the caller's own time limit).

        Raises SpoolUnavailableError when the spool cannot be listed or locked.
        """
        started = self.clock()
        names = self.store.list(MAX_LISTED_OBJECTS)
        if not names:
            return self._report(DrainReport())
        # No object is started after `stop`, so every send ends (within the client's budget) before the lock expires.
        stop = started + seconds - client.policy.budget
        if self._lock(until=started + seconds + LOCK_MARGIN_SECONDS) is None:
            return self._report(DrainReport(objects_left=len(names), oldest_age=started - spooled_at(names[0]), locked_out=True))
        from concurrent.futures import ThreadPoolExecutor

        replayed = rejected = 0
        done: set[str] = set()
        try:
            with ThreadPoolExecutor(DRAIN_WORKERS, thread_name_prefix="drain") as pool:
                for start in range(0, len(names), DRAIN_WORKERS):
                    if self.clock() >= stop:
                        break
                    chunk = names[start:start + DRAIN_WORKERS]
                    results = list(pool.map(lambda name: self._replay(name, client), chunk))
                    for name, (outcome, events) in zip(chunk, results):
                        if outcome is not Outcome.FAILED:
                            done.add(name)
                        replayed += events if outcome is Outcome.REPLAYED else 0
                        rejected += events if outcome is Outcome.REJECTED else 0
                    if any(outcome is Outcome.FAILED for outcome, _ in results):
                        break  # Segment is still down: leave the rest to the next drain
        finally:
            self._unlock()
        left = [name for name in names if name not in done]
        age = self.clock() - spooled_at(left[0]) if left else 0.0
        return self._report(DrainReport(replayed, rejected, len(left), age))

    def _replay(self, name: str, client: SegmentClient) -> tuple[Outcome, int]:
        """Sends one object to Segment; (what happened, how many events it held)."""
        found = self.store.get(name)
        if found is None:
            return Outcome.GONE, 0
        body, _ = found
        try:
            spooled = Spooled.decode(body)
        except (ValueError, KeyError, TypeError) as e:
            log.error("unreadable spool object set aside", extra={"fields": {"object": name, "error": type(e).__name__}})
            self._set_aside(name, body)
            return Outcome.REJECTED, 0
        try:
            for batch in pack(spooled.lines):
                client.post_batch(spooled.write_key, batch, spooled.replay_sent_at(self.clock()))
        except BatchRefusedError as e:
            log.error("Segment refused a spooled batch; set aside", extra={"fields": {
                "object": name, "events": len(spooled.lines), "write_key_sha256": key_hash(spooled.write_key), "failure": str(e)}})
            self._set_aside(name, body)
            return Outcome.REJECTED, len(spooled.lines)
        except DeliveryError as e:
            log.warning("Segment still not taking spooled events", extra={"fields": {"object": name, "failure": str(e)}})
            return Outcome.FAILED, 0
        self.store.delete(name)  # only now: a crash before this re-sends the batch, which Segment dedupes
        return Outcome.REPLAYED, len(spooled.lines)

    def _set_aside(self, name: str, body: bytes) -> None:
        self.store.put(REJECTED_PREFIX + name, body)
        self.store.delete(name)

    def _lock(self, until: float) -> str | None:
        """Takes the drain lock until `until`; None when a live drain holds it."""
        body = json.dumps({"until": until}).encode()
        etag = self.store.put_if(LOCK_NAME, body, None)
        if etag is not None:
            return etag
        held = self.store.get(LOCK_NAME)
        if held is None:  # released in between: try once more, without looping against a busy peer
            return self.store.put_if(LOCK_NAME, body, None)
        current, current_etag = held
        try:
            expired = float(json.loads(current)["until"]) < self.clock()
        except (ValueError, KeyError, TypeError):
            expired = True  # a lock no drain could have written holds nothing
        if not expired:
            return None
        log.warning("taking over the drain lock of a drain that did not finish")
        return self.store.put_if(LOCK_NAME, body, current_etag)

    def _unlock(self) -> None:
        # Unconditional: a holder never runs past `until`, so the lock cannot have passed to another drain.
        self.store.delete(LOCK_NAME)

    def _report(self, report: DrainReport) -> DrainReport:
        self.metrics.drained(report.replayed, report.rejected, report.oldest_age)
        if report.replayed or report.rejected or report.objects_left:
            log.info("drained the spool", extra={"fields": report._asdict()})
        return report


def open_spool(location: S3Location | Path | None, metrics: Metrics = NO_METRICS, s3: S3Client | None = None) -> Spool | None:
    """The spool in the folder, or under the bucket's prefix through `s3` (required then); None for no spool."""
    if location is None:
        return None
    if isinstance(location, S3Location):
        if s3 is None:
            raise ValueError(f"a spool in s3://{location.bucket} needs an S3 client")
        store: SpoolStore = S3Store(location, s3)
    else:
        store = FolderStore(location)
    return Spool(store, metrics)


def drain_client(host: str) -> SegmentClient:
    """The drain's own Segment client: short retries, and a pool for every worker."""
    return SegmentClient(host, DRAIN_POLICY, pool=connections.pool(host, DRAIN_WORKERS))


def is_schedule(event: dict[str, Any]) -> bool:
    """Whether the Lambda was invoked by the EventBridge schedule rather than by API Gateway."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"

