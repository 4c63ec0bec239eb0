"""Where a source's events go: its valid ones to its valid key or on under the key they were sent with, its
invalid ones to its invalid key; locally, without Segment, to JSONL files per source."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from .config import Settings
from .document import ENVIRONMENT_SOURCE, Source
from .forwarder import Consignment, Destination, JsonlFile, SegmentClient, SegmentSource
from .validator import Verdict, partition


class Outlets(Protocol):
    def for_source(self, source: Source, sent_with: str) -> tuple[Destination, Destination]:
        """The valid and the invalid destination of `source`'s events sent with the key `sent_with`."""


class SegmentOutlets(NamedTuple):
    """A Segment source per write key, with no pool per key: there is no limit on the number of keys. Valid and
    invalid events each have their client (and its pool) to the host, as a request posts to both at once: each
    keeps the warm connection its first post opened, however the two posts of a cold start happen to overlap."""

    valid: SegmentClient
    invalid: SegmentClient

    def for_source(self, source: Source, sent_with: str) -> tuple[Destination, Destination]:
        assert source.invalid_write_key is not None  # the document refuses a source without one when forwarding
        return (SegmentSource(self.valid, source.valid_key_for(sent_with)),
                SegmentSource(self.invalid, source.invalid_write_key))


class FileOutlets:
    """valid.jsonl and invalid.jsonl in `root` for the environment's source (as before sources existed), and in
    `root`/<name>/ for each source a document declares; one file object, and so one lock, per path."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[Path, JsonlFile] = {}
        self._lock = threading.Lock()

    def for_source(self, source: Source, sent_with: str) -> tuple[Destination, Destination]:
        folder = self.root if source.name == ENVIRONMENT_SOURCE else self.root / source.name
        return self._file(folder / "valid.jsonl"), self._file(folder / "invalid.jsonl")

    def _file(self, path: Path) -> JsonlFile:
        with self._lock:
            return self._files.setdefault(path, JsonlFile(path))


def open_outlets(settings: Settings) -> SegmentOutlets | FileOutlets:
    """Segment at the settings' host; locally without one, files under the events folder."""
    if settings.segment_api_host is None:
        return FileOutlets(settings.events_dir)
    return SegmentOutlets(SegmentClient(settings.segment_api_host), SegmentClient(settings.segment_api_host))


def consign(outlets: Outlets, source: Source, events: list[dict[str, Any]], sent_with: list[str],
            verdicts: list[Verdict]) -> list[Consignment]:
    """One consignment per key the events were sent with (one, nearly always), each partitioned on its own."""
    groups: dict[str, tuple[list[dict[str, Any]], list[Verdict]]] = {}
    for event, key, verdict in zip(events, sent_with, verdicts, strict=True):
        group = groups.setdefault(key, ([], []))
        group[0].append(event)
        group[1].append(verdict)
    consignments = []
    for key, (group_events, group_verdicts) in groups.items():
        valid, invalid = partition(group_events, group_verdicts)
        consignments.append(Consignment(*outlets.for_source(source, key), valid, invalid))
    return consignments
