"""Segment sources in memory, one per write key, for judging what reaches which key without a network."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from reflekt_registry.document import Source


class MemoryDestination:
    """A source that never fails and keeps what it was sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, lines: Sequence[bytes], sent_at: str | None) -> None:
        with self._lock:
            self.events += [json.loads(line) for line in lines]


class MemoryOutlets:
    """Routes as the Segment outlets do, by write key, to a MemoryDestination per key."""

    def __init__(self) -> None:
        self._by_key: defaultdict[str, MemoryDestination] = defaultdict(MemoryDestination)
        self._lock = threading.Lock()

    def for_source(self, source: Source, sent_with: str) -> tuple[MemoryDestination, MemoryDestination]:
        assert source.invalid_write_key is not None
        with self._lock:
            return self._by_key[source.valid_key_for(sent_with)], self._by_key[source.invalid_write_key]

    def events(self, write_key: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._by_key[write_key].events) if write_key in self._by_key else []

    def keys(self) -> set[str]:
        """Every key that received at least one event."""
        with self._lock:
            return {key for key, destination in self._by_key.items() if destination.events}
