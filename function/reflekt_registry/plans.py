"""Tracking plans: which schema an event's name and version mean, looked up in an index of every schema's name."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

# The folder of the bucket where publish writes the index of a prefix's schemas (see index_key), and its format.
INDEX_FOLDER = "registry/"
INDEX_FORMAT = 1
# Reflekt's file layout: <plan>/<Event_Name>/<MAJOR>-<MINOR>.json, versions as its meta-schema spells them.
VERSION_FILE = re.compile(r"([1-9][0-9]*)-(0|[1-9][0-9]*)\.json")
# Segment's convention for the version an event was written against (documented by Protocols).
EVENT_VERSION_PATH = ("protocols", "event_version")
# Why a version was chosen, as context.reflekt.versionReason records it on every event found by name: the latest
# MINOR of the MAJOR that event_version names, or else of the oldest MAJOR, for one of three reasons. Short fixed
# phrases: they ride on every such event, and a warehouse can group by them (the value sent is in the event).
NAMED_MAJOR = "event_version"
NO_VERSION = "no event_version"
NOT_AN_INTEGER = "event_version not an integer"
UNKNOWN_MAJOR = "event_version names no major"
# Reflekt's names for the schemas of the calls that carry no event name.
CALL_SCHEMA_NAMES = {"identify": "Identify", "group": "Group", "page": "Page Viewed", "screen": "Screen Viewed"}
# No schema name can be longer than a schema id, so a longer event name is unplanned without being normalised;
# this bounds the work a hostile 10 KB name costs.
MAX_EVENT_NAME_CHARS = 512
# How much of a client's value a message quotes.
MAX_QUOTED_CHARS = 80


class IndexEntry(NamedTuple):
    schema_id: str
    name: str  # the schema's self.name, or its folder's name with underscores read as spaces
    # The schema object's ETag when the index was made ("" when unknown): a warm store whose cached copy has this
    # ETag knows it is current without asking S3 for the schema itself.
    etag: str = ""


class Resolution(NamedTuple):
    """The schema chosen for an event by its name (its id says the plan and the version), and why that version."""

    schema_id: str
    reason: str


class Event(NamedTuple):
    """Every version of one event in one folder, `<plan><Event_Name>/`, with the answers for it worked out once."""

    folder: str  # e.g. "jaffle_shop/Order_Completed/"
    plan: str  # the folder's parent, e.g. "jaffle_shop/" ("" for a folder at the top)
    by_major: Mapping[int, Resolution]  # event_version N -> the latest MINOR of MAJOR N
    oldest: Resolution  # the latest MINOR of the oldest MAJOR, for an event that names no version

    def version_for(self, event_version: Any) -> Resolution:
        """Protocols' rule: event_version names the MAJOR, checked against its latest MINOR; otherwise the oldest
        MAJOR, with the reason why."""
        if event_version is None:
            return self.oldest
        if type(event_version) is not int:  # bool too, which JSON keeps apart and Python would read as 0 or 1
            return self.oldest._replace(reason=NOT_AN_INTEGER)
        return self.by_major.get(event_version) or self.oldest._replace(reason=UNKNOWN_MAJOR)


class Unresolved(NamedTuple):
    """No single schema: `keyword` is "unplanned" (none has the name) or "ambiguous" (several folders have it)."""

    keyword: str
    message: str


def name_key(name: str) -> str:
    """What names are matched on: case matters (as in Protocols), but a space and an underscore are the same
    character, because Reflekt writes spaces as underscores in folder names, and so are the unicode forms of
    one text (é typed as one code point or as e plus an accent)."""
    return unicodedata.normalize("NFC", name).replace("_", " ")


def plan_of(schema_id: str) -> str:
    """The plan a Reflekt id belongs to: what precedes <Event_Name>/<M-m>.json ("" for a shorter id)."""
    parts = schema_id.split("/")
    return "".join(part + "/" for part in parts[:-2])


def entry_from_path(schema_id: str) -> IndexEntry | None:
    """The entry Reflekt's layout implies for an id, or None for a file outside it (still usable by id)."""
    parts = schema_id.split("/")
    if len(parts) < 2 or VERSION_FILE.fullmatch(parts[-1]) is None:
        return None
    return IndexEntry(schema_id, parts[-2].replace("_", " "))


def entry_from_document(schema_id: str, document: Any) -> IndexEntry | None:
    """The entry for a schema whose body is known: its self.name, when it has one, names it."""
    entry = entry_from_path(schema_id)
    block = document.get("self") if isinstance(document, dict) else None
    declared = block.get("name") if isinstance(block, dict) else None
    if entry is None or not isinstance(declared, str) or not declared:
        return entry
    return entry._replace(name=declared)


def index_key(prefix: str) -> str:
    """Where the index of the schemas under `prefix` lives: registry/schemas/index.json for schemas/. One per prefix,
    so registries whose schemas share a bucket under different prefixes never overwrite each other's index."""
    return f"{INDEX_FOLDER}{prefix}index.json"


def index_document(entries: Iterable[IndexEntry], prefix: str) -> bytes:
    """The index publish writes: the prefix it describes and every schema's id, name and (when known) ETag."""
    schemas = [{"id": e.schema_id, "name": e.name, **({"etag": e.etag} if e.etag else {})} for e in sorted(entries)]
    return json.dumps({"format": INDEX_FORMAT, "prefix": prefix, "schemas": schemas}, indent=1).encode()


def read_index_document(body: bytes, prefix: str) -> list[IndexEntry]:
    """The entries of an index document; ValueError says why it cannot be used for schemas under `prefix`."""
    try:
        document = json.loads(body)
    except RecursionError:  # the parser's own limit on nesting: not JSON the index format can be
        raise ValueError("it is nested too deeply to be an index") from None
    if not isinstance(document, dict) or document.get("format") != INDEX_FORMAT:
        raise ValueError(f"not an index of format {INDEX_FORMAT}")
    if document.get("prefix") != prefix:
        raise ValueError(f"it describes schemas under {document.get('prefix')!r}, not {prefix!r}")
    schemas = document.get("schemas")
    if not isinstance(schemas, list):
        raise ValueError("schemas is not a list")
    entries = []
    for item in schemas:
        if not (isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("name"), str)
                and isinstance(item.get("etag", ""), str)):
            raise ValueError(f"entry {str(item)[:MAX_QUOTED_CHARS]} is not {{\"id\": ..., \"name\": ..., "
                             "\"etag\": ...}} (etag optional)")
        entry = entry_from_path(item["id"])
        if entry is not None:
            entries.append(entry._replace(name=item["name"], etag=item.get("etag", "")))
    return entries


class SchemaIndex:
    """Every versioned schema by name key; built once per refresh, then only read."""

    def __init__(self, entries: Iterable[IndexEntry]):
        folders: dict[str, tuple[set[str], dict[int, tuple[int, str]]]] = {}  # folder -> (names, MAJOR -> latest)
        self.size = 0  # how many schemas it indexes, every version counted
        for entry in entries:
            self.size += 1
            folder, _, file = entry.schema_id.rpartition("/")
            major, minor = (int(n) for n in VERSION_FILE.fullmatch(file).groups())  # type: ignore[union-attr]
            names, latest = folders.setdefault(folder + "/", (set(), {}))
            names.add(entry.name)
            if major not in latest or minor > latest[major][0]:
                latest[major] = (minor, entry.schema_id)
        self._by_key: dict[str, list[Event]] = {}
        for folder, (names, latest) in sorted(folders.items()):
            by_major = {major: Resolution(schema_id, NAMED_MAJOR) for major, (_, schema_id) in latest.items()}
            oldest = by_major[min(by_major)]._replace(reason=NO_VERSION)
            event = Event(folder, plan_of(oldest.schema_id), by_major, oldest)
            # A folder's versions normally share one name; if self.name changed between them, each name finds it.
            for key in sorted({name_key(name) for name in names}):
                self._by_key.setdefault(key, []).append(event)

    def events(self, name: str, plans: tuple[str, ...]) -> list[Event]:
        """The event folders whose name matches, within `plans` ($id prefixes; empty means every schema)."""
        found = self._by_key.get(name_key(name), [])
        return [event for event in found if event.folder.startswith(plans)] if plans else found

    def resolve(self, name: Any, event_version: Any, plans: tuple[str, ...]) -> Resolution | Unresolved:
        if not isinstance(name, str) or not name:
            return Unresolved("unplanned", f"the event has no name to look up: {_quote(name)}")
        found = self.events(name, plans) if len(name) <= MAX_EVENT_NAME_CHARS else []
        if not found:
            where = f"the plans {', '.join(plans)}" if plans else "any plan"
            return Unresolved("unplanned", f"no schema named {_quote(name)} in {where}")
        if len(found) > 1:
            return Unresolved("ambiguous", _ambiguity(name, found))
        return found[0].version_for(event_version)


def _ambiguity(name: str, found: list[Event]) -> str:
    plans = sorted({event.plan for event in found})
    folders = ", ".join(event.folder for event in found)
    if len(plans) > 1:
        return (f"{_quote(name)} names schemas in several plans ({', '.join(plans)}): list the one this source "
                f"follows in the configuration's \"plans\"")
    return (f"{_quote(name)} names several schemas of plan {plans[0]} ({folders}) whose names differ only by "
            "spaces, underscores or unicode form: rename one of them")


def event_version_of(event: Mapping[str, Any]) -> Any:
    """context.protocols.event_version, or None where any part of the way is absent or not an object."""
    value: Any = event.get("context")
    for name in EVENT_VERSION_PATH:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _quote(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= MAX_QUOTED_CHARS else shown[:MAX_QUOTED_CHARS] + "…"
