"""Delivers events to Segment's HTTP API (or, locally, to JSONL files) within Segment's limits and a time budget."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import urllib3

from . import __version__, connections
from .errors import BatchRefusedError, DeliveryError
from .retry import RetryPolicy, send
from .validator import shrink

if TYPE_CHECKING:  # spool.py imports this module
    from .spool import Spool

# Segment refuses an event over 32 KB with a 400 for the whole batch (the SDKs' MAX_MSG_SIZE = 32 << 10).
MAX_EVENT_BYTES = 32 << 10
# Segment's batch cap is 500 KB; like analytics-python, stay lower to leave room for the envelope.
MAX_BATCH_BYTES = 475_000
# Segment answers 200 but drops the events past 2,500 in one batch.
MAX_BATCH_EVENTS = 2_500
# Batches posted at once: a valid and an invalid destination, plus the extra batches of an unusually large request.
CONCURRENT_POSTS = 4


class SegmentClient:
    """Posts batches to one Segment API host through one connection pool, reused across warm invocations."""

    def __init__(
        self,
        host: str,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pool: urllib3.PoolManager | None = None,
    ):
        self.host = host
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        # One pool for the host, whatever the number of write keys (the key is a header, not a connection), with
        # room for as many connections as the Forwarder posts batches at once.
        self.pool = pool or connections.pool(host, CONCURRENT_POSTS)

    def post_batch(self, write_key: str, lines: Sequence[bytes], sent_at: str | None) -> None:
        """Raises DeliveryError, naming the last failure, when the batch is not accepted within the budget."""
        url = f"{self.host}/v1/batch"
        body = _batch_body(lines, sent_at)
        token = base64.b64encode(f"{write_key}:".encode()).decode()
        headers = {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/json",
            "User-Agent": f"reflekt-registry/{__version__}",
        }
        outcome = send(self.pool, "POST", url, body, headers, self.policy, self.clock, self.sleep, "Segment")
        if outcome.failure is None:
            if 200 <= outcome.response.status < 300:
                return
            status = outcome.response.status
            refused = BatchRefusedError if 400 <= status < 500 else DeliveryError
            raise refused(f"Segment refused a batch of {len(lines)} events: HTTP {status}")
        error = DeliveryError(
            f"Segment did not accept a batch of {len(lines)} events within {self.policy.budget:g} s: {outcome.failure}")
        error.retry_after = outcome.retry_after
        raise error


def _batch_body(lines: Sequence[bytes], sent_at: str | None) -> bytes:
    # Events are serialised once, when packed; the envelope is spliced around them.
    tail = b"]" if sent_at is None else b'],"sentAt":' + json.dumps(sent_at).encode()
    return b'{"batch":[' + b",".join(lines) + tail + b"}"


class Destination(Protocol):
    # The Segment write key it posts with, under which undelivered events are spooled; None for a local file.
    write_key: str | None

    def send(self, lines: Sequence[bytes], sent_at: str | None) -> None:
        """Delivers serialised events or raises DeliveryError."""


class SegmentSource(NamedTuple):
    """One Segment source, addressed by its write key; equal keys on one client are one destination."""

    client: SegmentClient
    write_key: str

    def send(self, lines: Sequence[bytes], sent_at: str | None) -> None:
        self.client.post_batch(self.write_key, lines, sent_at)


class JsonlFile:
    """A local stand-in for a Segment source: one event per line, appended."""

    write_key = None  # a file never refuses, so nothing is ever spooled for it

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def send(self, lines: Sequence[bytes], sent_at: str | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("ab") as out:
            out.write(b"".join(line + b"\n" for line in lines))


# One encoder for every event: json.dumps with any option builds a new JSONEncoder on each call. Its ASCII
# escapes keep lone surrogates (valid in JSON text, not in UTF-8) from failing the bytes encode.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode(event: dict[str, Any]) -> bytes:
    return _ENCODER.encode(event).encode()


def pack(lines: Sequence[bytes]) -> list[list[bytes]]:
    """Splits serialised events into batches Segment accepts whole."""
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and (size + len(line) + 1 > MAX_BATCH_BYTES or len(current) == MAX_BATCH_EVENTS):
            batches.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        batches.append(current)
    return batches


class Consignment(NamedTuple):
    """Events of one request bound for one pair of destinations."""

    valid: Destination
    invalid: Destination  # also takes the stand-ins for valid events too large for Segment
    valid_events: list[dict[str, Any]]
    invalid_events: list[dict[str, Any]]


class Forwarder:
    """Sends each destination its events in batches Segment accepts, concurrently when there are several.

    With a spool, a batch Segment did not take is kept there for the scheduled replay instead of failing the
    request; only when the spool fails too does the DeliveryError reach the client (a 503).
    """

    def __init__(self, spool: Spool | None = None) -> None:
        self.spool = spool
        self._executor: Any = None  # made on the first request that needs it: a cold start may never

    def deliver(self, consignments: Sequence[Consignment], sent_at: str | None) -> None:
        """Events for one destination (one write key) share batches, whichever consignment they came in."""
        lines: dict[Destination, list[bytes]] = {}
        for consignment in consignments:
            valid_lines, moved = _encode_all(consignment.valid_events)
            invalid_lines, shrunk = _encode_all(consignment.invalid_events + moved)
            invalid_lines += [encode(stand_in) for stand_in in shrunk]  # a stand-in always fits
            for destination, encoded in ((consignment.valid, valid_lines), (consignment.invalid, invalid_lines)):
                if encoded:
                    lines.setdefault(destination, []).extend(encoded)
        self._post_all([(destination, batch) for destination, encoded in lines.items() for batch in pack(encoded)], sent_at)

    def _post_all(self, jobs: list[tuple[Destination, list[bytes]]], sent_at: str | None) -> None:
        """Posts every batch; raises the first DeliveryError once all have been tried."""
        if len(jobs) <= 1:  # the common case needs no thread hand-off
            for destination, batch in jobs:
                self._send(destination, batch, sent_at)
            return
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=CONCURRENT_POSTS, thread_name_prefix="forward")
        futures = [self._executor.submit(self._send, destination, batch, sent_at) for destination, batch in jobs]
        errors = [error for error in (future.exception() for future in futures) if error is not None]
        if errors:
            raise errors[0]

    def _send(self, destination: Destination, batch: list[bytes], sent_at: str | None) -> None:
        try:
            destination.send(batch, sent_at)
        except DeliveryError as failure:
            if self.spool is None or destination.write_key is None:
                raise
            self.spool.keep(destination.write_key, batch, sent_at, failure)


def _encode_all(events: list[dict[str, Any]]) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Serialises events; each one over the limit is returned apart as its (invalid) shrunk stand-in."""
    lines, oversized = [], []
    for event in events:
        line = encode(event)
        if len(line) > MAX_EVENT_BYTES:
            oversized.append(shrink(event, len(line), MAX_EVENT_BYTES))
        else:
            lines.append(line)
    return lines, oversized
