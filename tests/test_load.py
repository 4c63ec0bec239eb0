"""Bounded load on loopback: real SDK clients sending through the local server to a Segment that fails part of the time.

Four analytics-python clients send 250 events each, concurrently, some gzipped; the fake Segment fails about a
third of the requests it gets (5xx, 429, dropped connections, slow answers). The registry's own retries are cut
to two so that some failures reach the SDKs as 503s and are retried by them. Afterwards every messageId is counted
at the fake: none may be missing and none may have reached the source it does not belong at. Duplicates are
allowed; Segment dedupes on messageId.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from segment.analytics import Client

from fakes.delivery import arrivals
from fakes.segment import Fault, FakeSegment
from helpers import CLIENT_KEY, INVALID_KEY, TEST_EVENT, VALID_KEY, make_registry, tune_retries
from local_support import serve
from reflekt_registry.forwarder import RetryPolicy

CLIENTS = 4
EVENTS_PER_CLIENT = 250
FAULT_RATE = 0.3
# Generous: the run takes a few seconds; this only stops a hung SDK from hanging the suite.
CLIENT_DEADLINE_SECONDS = 120

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


def test_concurrent_sdk_clients_lose_nothing_while_segment_flaps():
    """4 SDK clients x 250 events through the local server, Segment failing ~30%: every event arrives, at its source."""
    expected = {arguments["message_id"]: source for client in range(CLIENTS) for _, arguments, source in plan_events(client)}
    statuses: Counter[int] = Counter()
    with FlakySegment() as segment:
        registry = make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY)
        tune_retries(registry, RetryPolicy(attempts=2, budget=3.0, backoff_base=0.01, backoff_max=0.05))
        handle = registry.handle

        def counting(event: dict[str, Any]) -> dict[str, Any]:
            response = handle(event)
            statuses[response["statusCode"]] += 1
            return response

        registry.handle = counting
        errors: list[Any] = []
        with serve(registry) as url:
            threads = [threading.Thread(target=run_client, args=(url, c, errors), daemon=True) for c in range(CLIENTS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(CLIENT_DEADLINE_SECONDS)
            assert not any(thread.is_alive() for thread in threads), "an SDK client never finished flushing"
        seen = arrivals(segment)

    assert errors == [], "an SDK gave up on a batch"
    assert sum(segment.injected.values()) > 0 and statuses[503] > 0, (segment.injected, statuses)  # the faults did bite
    missing = sorted(m for m, source in expected.items() if seen.get(m, Counter())[source] == 0)
    misrouted = sorted(m for m, where in seen.items() if set(where) - {expected.get(m)})
    assert missing == [], f"{len(missing)} events never arrived: {missing[:20]}"
    assert misrouted == [], f"{len(misrouted)} events reached the wrong source or were never sent: {misrouted[:20]}"
    assert set(statuses) <= {200, 503}
