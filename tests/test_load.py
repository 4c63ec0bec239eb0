"""Bounded load on loopback: real SDK clients sending through the local server to a Segment that fails part of the time.

Four analytics-python clients send 250 events each, concurrently, some gzipped; the fake Segment fails about a
third of the requests it gets (5xx, 429, dropped connections, slow answers). The registry's own retries are cut
to two so that some failures outlast them. Run twice:

- with the spool down, those failures reach the SDKs as 503s and are retried by them;
- with the spool working and Segment down altogether for a stretch in the middle of the run, they are spooled,
  every request is answered 200, and the local server's background drain replays the spool once Segment is back.

Afterwards every messageId is counted at the fake: none may be missing and none may have reached the source it
does not belong at. Duplicates are allowed; Segment dedupes on messageId.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from segment.analytics import Client

from fakes.delivery import arrivals
from fakes.segment import Fault, FakeSegment
import pytest

from helpers import CLIENT_KEY, INVALID_KEY, TEST_EVENT, VALID_KEY, make_registry, tune_retries, unusable_folder
from local_support import serve
from reflekt_registry.retry import RetryPolicy
from reflekt_registry.local.server import background_drain

CLIENTS = 4
EVENTS_PER_CLIENT = 250
FAULT_RATE = 0.3
# Generous: the run takes a few seconds; this only stops a hung SDK (or a stuck drain) from hanging the suite.
CLIENT_DEADLINE_SECONDS = 120
# The outage starts once Segment has received this share of the events, and lasts this long.
OUTAGE_AT = 0.5
OUTAGE_SECONDS = 2.0
DRAIN_INTERVAL_SECONDS = 0.25

FAULTS = {
    "500": Fault(status=500),
    "502": Fault(status=502),
    "503": Fault(status=503),
    "429": Fault(status=429),
    "close": Fault(close=True),
    "slow": Fault(delay=0.05),
}


@dataclass
class FlakySegment(FakeSegment):
    """Fails each request with probability `rate`, choosing the fault from FAULTS; seeded, so runs compare."""

    rate: float = FAULT_RATE
    seed: int = 20261126
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def _planned_fault(self) -> Fault | None:
        if self._random.random() >= self.rate:
            return None
        kind = self._random.choice(sorted(FAULTS))
        self.injected[kind] += 1
        return FAULTS[kind]


def plan_events(client: int) -> list[tuple[str, dict[str, Any], str]]:
    """(call, arguments, expected source) for each event of one client, decided before anything is sent."""
    plan = []
    for i in range(EVENTS_PER_CLIENT):
        message_id = f"load-{client}-{i:03d}"
        if i % 7 == 0:
            email = "a@b.co" if i % 2 else "not-an-email"
            traits = {"schema_id": "jaffle_shop/Identify/1-0.json", "email": email}
            plan.append(("identify", {"user_id": f"u{i}", "traits": traits, "message_id": message_id}, VALID_KEY if i % 2 else INVALID_KEY))
        else:
            value: Any = "ok" if i % 5 else i  # every fifth track has an integer where the schema wants a string
            properties = {"schema_id": TEST_EVENT, "test_property": value}
            plan.append(("track", {"user_id": f"u{i}", "event": "Test Event", "properties": properties, "message_id": message_id},
                         VALID_KEY if i % 5 else INVALID_KEY))
    return plan


def run_client(url: str, client: int, errors: list[Any]) -> None:
    sdk = Client(CLIENT_KEY, host=url, gzip=client % 2 == 1, upload_size=10, max_retries=10,
                 on_error=lambda error, batch: errors.append((error, [m.get("messageId") for m in batch])))
    for call, arguments, _ in plan_events(client):
        getattr(sdk, call)(**arguments)
    sdk.flush()
    sdk.shutdown()


def start_outage_midway(segment: FakeSegment, events: int) -> threading.Thread:
    """Takes Segment down for OUTAGE_SECONDS once it has received OUTAGE_AT of the events."""
    def watch() -> None:
        deadline = time.monotonic() + CLIENT_DEADLINE_SECONDS
        while sum(len(request.events) for request in list(segment.received)) < events * OUTAGE_AT and time.monotonic() < deadline:
            time.sleep(0.01)
        segment.down(OUTAGE_SECONDS)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


@pytest.mark.parametrize("outage", [False, True], ids=["spool-down-sdks-retry", "outage-midway-spooled"])
def test_concurrent_sdk_clients_lose_nothing_while_segment_flaps(tmp_path, registry_log, outage):
    """4 SDK clients x 250 events through the local server, Segment failing ~30% (and, with the spool, down for 2 s in
    the middle): every event arrives, at its source."""
    expected = {arguments["message_id"]: source for client in range(CLIENTS) for _, arguments, source in plan_events(client)}
    statuses: Counter[int] = Counter()
    with FlakySegment() as segment:
        spool_dir = str(tmp_path / "spool") if outage else unusable_folder(tmp_path)
        registry = make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY, SPOOL_DIR=spool_dir)
        tune_retries(registry, RetryPolicy(attempts=2, budget=3.0, backoff_base=0.01, backoff_max=0.05))
        handle = registry.handle

        def counting(event: dict[str, Any]) -> dict[str, Any]:
            response = handle(event)
            statuses[response["statusCode"]] += 1
            return response

        registry.handle = counting
        errors: list[Any] = []
        with serve(registry) as url, background_drain(registry, DRAIN_INTERVAL_SECONDS):
            watcher = start_outage_midway(segment, len(expected)) if outage else None
            threads = [threading.Thread(target=run_client, args=(url, c, errors), daemon=True) for c in range(CLIENTS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(CLIENT_DEADLINE_SECONDS)
            assert not any(thread.is_alive() for thread in threads), "an SDK client never finished flushing"
            if watcher:
                watcher.join(CLIENT_DEADLINE_SECONDS)
            deadline = time.monotonic() + CLIENT_DEADLINE_SECONDS
            while outage and registry.spool.store.list(1) and time.monotonic() < deadline:
                time.sleep(DRAIN_INTERVAL_SECONDS)
        seen = arrivals(segment)

    assert errors == [], "an SDK gave up on a batch"
    spooled = sum(r["events"] for r in registry_log.records if r["message"] == "spooled events Segment did not take")
    assert sum(segment.injected.values()) > 0, segment.injected
    if outage:  # the faults and the outage did bite, and the spool took every one of them
        assert segment.outage_answers > 0 and spooled > 0 and set(statuses) == {200}, (segment.outage_answers, spooled, statuses)
        assert registry.spool.store.list(1) == [], "the drain never emptied the spool"
    else:
        assert statuses[503] > 0 and spooled == 0, (statuses, spooled)
    missing = sorted(m for m, source in expected.items() if seen.get(m, Counter())[source] == 0)
    misrouted = sorted(m for m, where in seen.items() if set(where) - {expected.get(m)})
    assert missing == [], f"{len(missing)} events never arrived: {missing[:20]}"
    assert misrouted == [], f"{len(misrouted)} events reached the wrong source or were never sent: {misrouted[:20]}"
    assert set(statuses) <= {200, 503}
