"""Decides what publishing a Reflekt project would do to the bucket: which schemas are new, changed, unchanged,
refused (and why) or only in the bucket. Pure: the project's and the bucket's schemas in, a plan out.

The rules, in the order a schema meets them:
- sequencing: the file is `MAJOR-MINOR.json`, `self.version` says the same, `self.name` names the folder, and a
  family (one folder) counts 1-0, 1-1, … and 2-0, … with no gaps, over the project and the bucket together;
- immutability: a version already in the bucket keeps its content, except for annotations;
- compatibility: each MINOR accepts every event each earlier MINOR of its MAJOR accepts, as the project has it and
  as the bucket has it (a team may have deleted 1-0 from its project after bumping).
An explicit, recorded reason (publish's --force) overrides the last two, never sequencing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..schemas import UnusableSchema, compile_schema
from .compatibility import check, same_validation

# Reflekt's versions are MODEL-ADDITION, written MAJOR-MINOR, and the file is named after the version. Unlike
# plans.VERSION_FILE (what the registry looks up), MAJOR 0 is read here, so that 0-1.json hears that a family
# starts at 1-0 rather than that its name is no version.
VERSION_FILE = re.compile(r"(0|[1-9][0-9]*)-(0|[1-9][0-9]*)\.json")

NEW, CHANGED, UNCHANGED, REFUSED, BUCKET_ONLY, PRUNE = "new", "changed", "unchanged", "refused", "bucket only", "prune"
STATUSES = (NEW, CHANGED, UNCHANGED, REFUSED, BUCKET_ONLY, PRUNE)  # the order a plan's summary counts them in


class Version(NamedTuple):
    family: str  # the folder: jaffle_shop/Order_Completed
    major: int
    minor: int

    def id(self, major: int, minor: int) -> str:
        return f"{self.family}/{major}-{minor}.json"


class Entry(NamedTuple):
    schema_id: str
    status: str
    problems: tuple[str, ...] = ()  # why it is refused, or what a forced publish overrode
    note: str = ""  # e.g. "annotations only"
    forced: str | None = None  # the reason it is published despite its problems


class Plan(NamedTuple):
    entries: list[Entry]

    @property
    def refused(self) -> list[Entry]:
        return [e for e in self.entries if e.status == REFUSED]

    @property
    def uploads(self) -> list[Entry]:
        return [e for e in self.entries if e.status in (NEW, CHANGED)]

    @property
    def prunes(self) -> list[Entry]:
        return [e for e in self.entries if e.status == PRUNE]


def version_of(schema_id: str) -> Version | None:
    family, _, name = schema_id.rpartition("/")
    match = VERSION_FILE.fullmatch(name)
    return Version(family, int(match[1]), int(match[2])) if match and family else None


def plan(project: Mapping[str, bytes], bucket: Mapping[str, bytes] | None = None, *, force_reason: str | None = None,
         forced: Mapping[str, str] | None = None, prune: Iterable[str] = (),
         allow_unknown_keywords: bool = False) -> Plan:
    """What publishing `project` (id → file content) into a bucket holding `bucket` (id → object content; None when
    not compared with a bucket) would do. A refusal is overridden by `forced[id]`, else by `force_reason`. Pruned ids
    must be in the bucket and no longer in the project. The project's files are usable schemas (publish checks them
    first); the bucket's objects may be anything."""
    forced = forced or {}
    bucket = bucket or {}
    prune = set(prune)
    problems: dict[str, list[str]] = {schema_id: [] for schema_id in project}
    hard: dict[str, list[str]] = {schema_id: [] for schema_id in project}  # never overridden
    for schema_id in sorted(prune):
        if schema_id in project:
            hard.setdefault(schema_id, []).append("cannot prune: it is still in the project")
        elif schema_id not in bucket:
            hard.setdefault(schema_id, []).append("cannot prune: there is no such schema in the bucket")
    published = {schema_id: _usable(schema_id, body) for schema_id, body in bucket.items()}
    documents = {**published, **{schema_id: json.loads(body) for schema_id, body in project.items()}}
    for schema_id in project:
        hard[schema_id].extend(_naming_problems(schema_id, documents[schema_id]))
    for schema_id, problem in _gaps(project.keys(), bucket.keys()):
        hard[schema_id].append(problem)
    changed = {i for i in project if project[i] != bucket.get(i)}
    notes = {}
    for schema_id in changed & bucket.keys():
        if published[schema_id] is not None and same_validation(published[schema_id], documents[schema_id]):
            notes[schema_id] = "annotations only"
        else:
            problems[schema_id].extend(_edit_problems(schema_id, published[schema_id], documents[schema_id],
                                                      allow_unknown_keywords))
    live = {i: documents[i] for i in documents if i not in prune}
    for earlier, later in _minor_pairs(live):
        if earlier not in changed and later not in changed:
            continue  # both stay as the bucket has them: this publish changes nothing between them
        blamed = later if later in changed else earlier
        olds = {earlier: live[earlier]}
        if earlier in bucket and earlier in changed and later in changed:
            olds[f"{earlier} as published"] = published[earlier]
        for label, old in olds.items():
            prefix = (f"does not accept every event {label} accepts: " if blamed == later else
                      f"{later} would not accept every event this version accepts: ")
            problems[blamed].extend(_compatibility(old, live[later], earlier, later, prefix, allow_unknown_keywords))
    ids = sorted(documents.keys() | hard.keys(), key=_sort_key)
    return Plan([_entry(i, project, bucket, prune, changed, hard.get(i, []), problems.get(i, []), notes.get(i, ""),
                        forced.get(i, force_reason)) for i in ids])


def _entry(schema_id: str, project: Mapping[str, bytes], bucket: Mapping[str, bytes], prune: set[str],
           changed: set[str], hard: list[str], problems: list[str], note: str, force_reason: str | None) -> Entry:
    if hard or (problems and force_reason is None):
        return Entry(schema_id, REFUSED, tuple(hard + problems), note)
    if schema_id not in project:
        return Entry(schema_id, PRUNE if schema_id in prune else BUCKET_ONLY)
    if schema_id not in changed:
        return Entry(schema_id, UNCHANGED)
    return Entry(schema_id, CHANGED if schema_id in bucket else NEW, tuple(problems),
                 f"forced: {force_reason}" if problems else note, force_reason if problems else None)


def _usable(schema_id: str, body: bytes) -> Any:
    """A bucket object's document, or None when the registry could not use it (not JSON, not an object, not
    compilable): `aws s3 sync` or a hand may have put anything there, and nothing can be proved against it."""
    return None if isinstance(compile_schema(schema_id, body), UnusableSchema) else json.loads(body)


def _edit_problems(schema_id: str, published: Any, edited: Any, allow_unknown: bool) -> list[str]:
    """Why an edit of a published version is refused, and what else it breaks."""
    version = version_of(schema_id)
    advice = (f"publish the change as {version.id(version.major, version.minor + 1)} if it is compatible, else as a "
              "new MAJOR; " if version else "")
    return [f"its content changed, but a published version is immutable (apps already send it); {advice}or override "
            "with --force REASON", *_compatibility(published, edited, schema_id, schema_id, "", allow_unknown)]


def _compatibility(old: Any, new: Any, old_id: str, new_id: str, prefix: str, allow_unknown: bool) -> list[str]:
    """Each way `new` may reject an event `old` accepted, as text after `prefix`, which says which two versions."""
    unusable = [schema_id for schema_id, document in ((old_id, old), (new_id, new)) if document is None]
    if unusable:
        return [f"{prefix}the bucket's copy of {unusable[0]} is not a schema the registry can use, so compatibility "
                "cannot be proved"]
    version = version_of(new_id)
    found = check(old, new, next_major=f"{version.major + 1}-0" if version else "a new MAJOR",
                  allow_unknown_keywords=allow_unknown)
    return [f"{prefix}{p}" for p in found]


def _naming_problems(schema_id: str, document: Any) -> list[str]:
    """Reflekt's lint rules for a schema's place: the file is named after self.version, the folder after
    self.name."""
    version = version_of(schema_id)
    if version is None:
        name = schema_id.rpartition("/")[2]
        return [f"the file name must be the version, MAJOR-MINOR.json (e.g. 1-0.json), not {name}"]
    own = document.get("self") if isinstance(document, dict) else None
    if not isinstance(own, dict):
        return []
    found = []
    if own.get("version") != f"{version.major}-{version.minor}":
        found.append(f"self.version is {own.get('version')!r} but the file is {version.major}-{version.minor}.json; "
                     "they must agree")
    folder = version.family.rpartition("/")[2]
    if not isinstance(own.get("name"), str) or own["name"].replace(" ", "_") != folder:
        found.append(f"self.name is {own.get('name')!r} but the folder is {folder!r}; Reflekt names the folder after "
                     "self.name, with _ for spaces")
    return found


def _gaps(project: Iterable[str], bucket: Iterable[str]) -> Iterable[tuple[str, str]]:
    """(id, problem) for each project schema whose version does not follow the one before it in its family."""
    project = set(project)
    families: dict[str, list[Version]] = {}
    for schema_id in project | set(bucket):
        version = version_of(schema_id)
        if version:
            families.setdefault(version.family, []).append(version)
    for versions in families.values():
        previous = None
        for version in sorted(versions):
            schema_id = version.id(version.major, version.minor)
            expected = ([(1, 0)] if previous is None else
                        [(previous.major, previous.minor + 1), (previous.major + 1, 0)])
            if (version.major, version.minor) not in expected and schema_id in project:
                at = f"{version.major}-{version.minor}"
                yield schema_id, (f"a family starts at 1-0, not {at}" if previous is None else
                                  f"{at} cannot follow {previous.major}-{previous.minor}: versions have no gaps, so "
                                  f"{' or '.join(f'{major}-{minor}' for major, minor in expected)} comes next")
            previous = version


def _minor_pairs(documents: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(earlier, later) for every two MINORs of one MAJOR of one family."""
    majors: dict[tuple[str, int], list[Version]] = {}
    for schema_id in documents:
        version = version_of(schema_id)
        if version:
            majors.setdefault((version.family, version.major), []).append(version)
    for versions in majors.values():
        versions.sort()
        for index, later in enumerate(versions):
            for earlier in versions[:index]:
                yield earlier.id(earlier.major, earlier.minor), later.id(later.major, later.minor)


def _sort_key(schema_id: str) -> tuple[str, int, int]:
    version = version_of(schema_id)
    return (version.family, version.major, version.minor) if version else (schema_id, -1, -1)
