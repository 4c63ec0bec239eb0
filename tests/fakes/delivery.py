"""The proof that nothing accepted was lost: a ledger of what a client sent and was told, checked against Segment.

Every request a client makes is recorded with the events it carried, the source each event belongs at (decided
before sending) and the status the client got. `check` then holds the registry to its promise:

- every event of a request answered 200 arrived at its expected source at least once;
- no event ever arrived at the other source, and nothing arrived that no client sent;
- copies beyond one are explained: each send of an event can deliver it at most once (a client retry after a
  503 is a second send), unless `registry_attempts` allows the registry's own retries to duplicate a batch too
  (a slow Segment that accepted a request the registry had given up on);
- an event whose every request was refused (4xx) never arrived.

An event only ever told 503 may or may not have arrived: its client keeps it and retries, and Segment dedupes on
messageId, so it is neither lost nor wrongly accepted.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ledger:
    sends: Counter[str] = field(default_factory=Counter)  # messageId -> requests that carried it
    expected: dict[str, str] = field(default_factory=dict)  # messageId -> write key of the source it belongs at
    accepted: set[str] = field(default_factory=set)  # told 200 at least once
    retried: set[str] = field(default_factory=set)  # told 503 at least once
    refused: set[str] = field(default_factory=set)  # told 4xx at least once
    statuses: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, events: Iterable[tuple[str, str]], status: int) -> None:
        """One request: (messageId, expected source key) for each event it carried, and the status it got."""
        with self._lock:
            self.statuses[status] += 1
            for message_id, source in events:
                if self.expected.setdefault(message_id, source) != source:
                    raise AssertionError(f"{message_id} was sent expecting two different sources")
                self.sends[message_id] += 1
                if status == 200:
                    self.accepted.add(message_id)
                elif status == 503:
                    self.retried.add(message_id)
                elif 400 <= status < 500:
                    self.refused.add(message_id)
                else:
                    raise AssertionError(f"{message_id}: the client got {status}, which is neither accepted, retry nor refused")


@dataclass(frozen=True)
class Outcome:
    accepted: int
    retried_only: int
    arrived: int
    duplicates: int
    lost: int


def arrivals(segment: Any) -> dict[str, Counter[str]]:
    """messageId -> write key -> copies received, over every request the fake accepted."""
    seen: dict[str, Counter[str]] = {}
    for request in segment.received:
        for event in request.events:
            seen.setdefault(event.get("messageId"), Counter())[request.write_key] += 1
    return seen


def check(ledger: Ledger, segment: Any, *, registry_attempts: int = 1) -> Outcome:
    """Asserts the promise above and returns the figures; the assertion message lists every offending event."""
    seen = arrivals(segment)
    problems = []
    for message_id, where in seen.items():
        expected = ledger.expected.get(message_id)
        if expected is None:
            problems.append(f"{message_id}: arrived at {dict(where)} but no client sent it")
            continue
        wrong = {key: n for key, n in where.items() if key != expected}
        if wrong:
            problems.append(f"{message_id}: arrived at the wrong source {wrong} (belongs at {expected})")
        copies = where[expected]
        if copies > ledger.sends[message_id] * registry_attempts:
            problems.append(f"{message_id}: {copies} copies from {ledger.sends[message_id]} sends")
        if message_id not in ledger.accepted and message_id not in ledger.retried:
            problems.append(f"{message_id}: arrived although every request carrying it was refused")
    lost = sorted(m for m in ledger.accepted if seen.get(m, Counter())[ledger.expected[m]] == 0)
    problems += [f"{m}: the client was told 200 but it never arrived at {ledger.expected[m]}" for m in lost]
    assert not problems, f"{len(problems)} delivery problems:\n" + "\n".join(problems[:50])
    return Outcome(
        accepted=len(ledger.accepted),
        retried_only=len(ledger.retried - ledger.accepted),
        arrived=len(seen),
        duplicates=sum(sum(where.values()) - 1 for where in seen.values()),
        lost=len(lost),
    )
