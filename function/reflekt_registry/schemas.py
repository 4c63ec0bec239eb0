"""The schema store: fetches Reflekt schemas from S3 or a folder, compiles them once and caches them with a TTL."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import fastjsonschema

from .config import S3Location
from .errors import SchemaStoreUnavailableError
from .log import get_logger

# fastjsonschema compiles these faithfully; it silently ignores keywords of later drafts, so those are refused.
SUPPORTED_DIALECTS = {
    "json-schema.org/draft-04/schema": "draft-04",
    "json-schema.org/draft-06/schema": "draft-06",
    "json-schema.org/draft-07/schema": "draft-07",
}
# Reflekt writes draft-07; a schema that names no dialect is read as that.
DEFAULT_DIALECT = "http://json-schema.org/draft-07/schema#"
# A Reflekt $id is a relative path of plain segments ending in .json (e.g. segment/demo/Test_Event/1-0.json).
SCHEMA_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*\.json")
# S3 keys stop at 1,024 bytes; real ids are far shorter, and a cap keeps junk out of logs and cache keys.
MAX_SCHEMA_ID_LENGTH = 512
# An id that does not exist is looked up again after this long, so publishing it takes effect quickly
# while a stream of events naming it costs one S3 request per interval, not one per event.
MISSING_SCHEMA_TTL_SECONDS = 10.0
# While the store is down, a cached schema is served and the store retried after this long.
STALE_RETRY_SECONDS = 5.0

log = get_logger()


class CompiledSchema(NamedTuple):
    schema_id: str
    validate: Callable[[Any], Any]


class UnusableSchema(NamedTuple):
    """Why a schema id cannot validate anything; events naming it are invalid with this reason."""

    schema_id: str
    reason: str


Schema = CompiledSchema | UnusableSchema


class Fetched(NamedTuple):
    body: bytes
    version: str  # an ETag or a file stamp: equal versions mean equal bodies


NOT_MODIFIED = object()


class SchemaSource(Protocol):
    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        """The schema's body; NOT_MODIFIED if it is still `known_version`; None if there is no such schema.

        Raises SchemaStoreUnavailableError when the answer is unknown.
        """


def is_valid_schema_id(schema_id: object) -> bool:
    return (
        isinstance(schema_id, str)
        and len(schema_id) <= MAX_SCHEMA_ID_LENGTH
        and SCHEMA_ID_PATTERN.fullmatch(schema_id) is not None
        and ".." not in schema_id.split("/")
    )


class DirectorySource:
    """A Reflekt project's schemas/ folder; ids are confined to it."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def __str__(self) -> str:
        return f"folder {self.root}"

    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        path = (self.root / schema_id).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        try:
            stat = path.stat()
            version = f"{stat.st_mtime_ns}-{stat.st_size}"
            if version == known_version:
                return NOT_MODIFIED
            return Fetched(path.read_bytes(), version)
        except OSError as e:
            raise SchemaStoreUnavailableError(f"cannot read {path}: {e.strerror}") from e


class S3Source:
    """Objects under a prefix of a bucket; conditional GETs make an unchanged schema cost no download."""

    # Short timeouts and few retries: a caller is waiting, and a cached schema can be served meanwhile.
    CONNECT_TIMEOUT_SECONDS = 1.0
    READ_TIMEOUT_SECONDS = 2.0
    MAX_ATTEMPTS = 2

    def __init__(self, location: S3Location, client: Any = None):
        self.location = location
        self._client = client

    def __str__(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"

    @property
    def client(self) -> Any:
        # boto3 takes longer to import than everything else together: only pay for it once a schema is needed.
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                region_name=self.location.region,
                config=Config(
                    connect_timeout=self.CONNECT_TIMEOUT_SECONDS,
                    read_timeout=self.READ_TIMEOUT_SECONDS,
                    retries={"mode": "standard", "max_attempts": self.MAX_ATTEMPTS},
                ),
            )
        return self._client

    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.location.prefix + schema_id
        request = {"Bucket": self.location.bucket, "Key": key}
        if known_version:
            request["IfNoneMatch"] = known_version
        try:
            response = self.client.get_object(**request)
            return Fetched(response["Body"].read(), response["ETag"])
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("304", "NotModified"):
                return NOT_MODIFIED
            if code in ("404", "NoSuchKey"):
                return None
            raise SchemaStoreUnavailableError(f"cannot read s3://{self.location.bucket}/{key}: {code}") from e
        except BotoCoreError as e:
            raise SchemaStoreUnavailableError(f"cannot reach S3 for s3://{self.location.bucket}/{key}: {e}") from e


class _Entry:
    """A cached schema; `expires` moves forward each time the store confirms it."""

    __slots__ = ("schema", "version", "expires")

    def __init__(self, schema: Schema, version: str | None, expires: float):
        self.schema = schema
        self.version = version
        self.expires = expires


class SchemaStore:
    """Compiled schemas by id, kept across warm invocations and refreshed after `ttl` seconds."""

    def __init__(self, source: SchemaSource, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, schema_id: str) -> Schema:
        entry = self._cache.get(schema_id)
        if entry is not None and self.clock() < entry.expires:
            return entry.schema
        with self._lock:
            return self._refresh(schema_id)

    def clear(self) -> None:
        self._cache.clear()

    def _refresh(self, schema_id: str) -> Schema:
        entry = self._cache.get(schema_id)
        now = self.clock()
        if entry is not None and now < entry.expires:  # another thread refreshed it while this one waited
            return entry.schema
        try:
            fetched = self.source.fetch(schema_id, entry.version if entry else None)
        except SchemaStoreUnavailableError as e:
            if entry is None:
                raise
            log.warning("serving cached schema while the store is unavailable", extra={"fields": {"schema_id": schema_id, "error": str(e)}})
            entry.expires = now + min(self.ttl, STALE_RETRY_SECONDS)
            return entry.schema
        if fetched is NOT_MODIFIED and entry is not None:
            entry.expires = now + self.ttl
            return entry.schema
        if fetched is None:
            schema: Schema = UnusableSchema(schema_id, f"no schema with $id {schema_id!r} in {self.source}")
            self._cache[schema_id] = _Entry(schema, None, now + min(self.ttl, MISSING_SCHEMA_TTL_SECONDS))
            return schema
        assert isinstance(fetched, Fetched)
        schema = compile_schema(schema_id, fetched.body)
        if isinstance(schema, UnusableSchema):
            log.error("schema is unusable", extra={"fields": {"schema_id": schema_id, "reason": schema.reason}})
        else:
            log.info("compiled schema", extra={"fields": {"schema_id": schema_id, "version": fetched.version}})
            risky = dangerous_patterns(json.loads(fetched.body))
            if risky:  # still served: refusing a live schema would send its events to the invalid source
                log.warning("schema has patterns open to catastrophic backtracking (ReDoS)",
                            extra={"fields": {"schema_id": schema_id, "patterns": risky}})
        self._cache[schema_id] = _Entry(schema, fetched.version, now + self.ttl)
        return schema


def open_store(location: S3Location | Path, ttl: float) -> SchemaStore:
    source: SchemaSource = S3Source(location) if isinstance(location, S3Location) else DirectorySource(location)
    return SchemaStore(source, ttl)


class _RefuseRemoteRefs(Mapping[str, Callable[[str], Any]]):
    """A handler for every URI scheme that refuses: fastjsonschema would otherwise urlopen() any $ref it cannot
    resolve inside the schema, reaching the network or the file system on a schema author's say-so."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _refuse(uri: str) -> Any:
    raise fastjsonschema.JsonSchemaDefinitionException(
        f"$ref {uri!r} points outside the schema; only local refs such as '#/definitions/x' are resolved"
    )


def _is_email(value: str) -> bool:
    """fastjsonschema's draft-04+ email rule: one @; the local part neither starts nor ends with '.' nor holds '..';
    the domain has a '.' with text on both sides."""
    local, at, domain = value.partition("@")
    return (bool(at) and local[:1] not in ("", ".") and not local.endswith(".") and ".." not in local
            and "@" not in domain and "." in domain[1:-1])


def _is_idn_email(value: str) -> bool:
    """fastjsonschema's draft-07 idn-email rule: one @, text before it, a '.' inside the domain."""
    local, at, domain = value.partition("@")
    return bool(at and local) and "@" not in domain and "." in domain[1:-1]


# fastjsonschema checks these formats with regexes that backtrack quadratically on crafted values (a 40 KB
# email takes over a second of the Lambda's time); these accept the same strings in linear time.
LINEAR_FORMATS: dict[str, Callable[[str], bool]] = {"email": _is_email, "idn-email": _is_idn_email}


def dialect_of(document: Mapping[str, Any]) -> str | None:
    """The supported draft a schema declares ('draft-07'), or None when it declares another one."""
    declared = document.get("$schema", DEFAULT_DIALECT)
    if not isinstance(declared, str):
        return None
    bare = declared.split("://", 1)[-1].rstrip("#")
    return SUPPORTED_DIALECTS.get(bare)


def compile_schema(schema_id: str, body: bytes) -> Schema:
    """Compiles a schema document, or says plainly why it cannot be used."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return UnusableSchema(schema_id, f"schema {schema_id!r} is not valid JSON: {e}")
    if not isinstance(document, dict):
        return UnusableSchema(schema_id, f"schema {schema_id!r} is not a JSON object")
    if dialect_of(document) is None:
        return UnusableSchema(
            schema_id,
            f"schema {schema_id!r} declares $schema {document.get('$schema')!r}; only draft-04, draft-06 and "
            "draft-07 are supported, because later keywords would be silently ignored",
        )
    # A relative $id (Reflekt's convention; draft-04 spells it id) confuses fastjsonschema's resolution of local
    # refs; ids are not needed for validation, and the dialect is made explicit so the right generator is used.
    definition = {**document, "$schema": document.get("$schema", DEFAULT_DIALECT)}
    definition.pop("$id", None)
    definition.pop("id", None)
    try:
        validate = fastjsonschema.compile(definition, handlers=_RefuseRemoteRefs(), formats=LINEAR_FORMATS,
                                          use_default=False, fast_fail=False)
    except fastjsonschema.JsonSchemaDefinitionException as e:
        return UnusableSchema(schema_id, f"schema {schema_id!r} cannot be compiled: {e}")
    except Exception as e:  # the generator fails on some malformed schemas with bare Python errors (re.error, AttributeError)
        return UnusableSchema(schema_id, f"schema {schema_id!r} cannot be compiled: {type(e).__name__}: {e}")
    return CompiledSchema(schema_id, validate)


# -- ReDoS detection ------------------------------------------------------------------------------------------------
# fastjsonschema runs `pattern` and `patternProperties` with Python's backtracking `re` on strings and property
# names that clients control, so a pattern whose matcher can try exponentially many ways to split the same text
# lets one event occupy the function until it times out. The check below is a heuristic over re's own parse of the
# pattern; it finds the classic exponential shapes and says nothing about polynomial ones (such as `\d+\d+x`).
try:
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # Python < 3.11 names them sre_constants and sre_parse
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

# Keywords whose values are data (an enum's members, a default), never schemas, so a "pattern" inside is no regex.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
# Keywords that map names to subschemas: a property may be called "pattern" without being one.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependencies"})
# Characters are modelled as Latin-1 code points plus one stand-in (256) for everything above.
_OTHER = 256
_ANY_CHAR = frozenset(range(_OTHER + 1))
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)  # POSSESSIVE_REPEAT never backtracks, so it is left out
# A group repeated at most this often multiplies the ways to match by a bounded factor (as in IPv4's `(...\.){3}`),
# which is polynomial; the exponential blow-up needs a repetition count that grows with the input.
_FEW_REPEATS = 10


def dangerous_patterns(document: Any) -> list[str]:
    """The regexes of a schema (in `pattern` and `patternProperties`) that can backtrack exponentially: a repeated
    group holding another variable-length repetition with nothing disjoint to separate their matches, as in
    `(a+)+`, `(a*)*`, `(.*)*` or `(\\w+\\s?)*`, or holding alternatives that match the same text, as in `(a|a)*`."""
    found: list[str] = []
    try:
        for pattern in _schema_patterns(document):
            if pattern not in found and _is_dangerous(pattern):
                found.append(pattern)
    except RecursionError:  # a schema nested past the walk's depth is checked as far as it goes
        pass
    return found


def _schema_patterns(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _schema_patterns(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            yield value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            if key == "patternProperties":
                yield from (name for name in value if isinstance(name, str))
            for subschema in value.values():
                yield from _schema_patterns(subschema)
        elif key not in _DATA_KEYWORDS:
            yield from _schema_patterns(value)


def _is_dangerous(pattern: str) -> bool:
    try:
        return _has_ambiguous_repeat(list(_sre_parse.parse(pattern)))
    except Exception:  # not a regex re can read: compiling the schema reports that, with a better message
        return False


def _children(op: Any, av: Any) -> list[list[Any]]:
    if op in _REPEATS or op is _sre.POSSESSIVE_REPEAT:
        return [list(av[2])]
    if op is _sre.SUBPATTERN:
        return [list(av[3])]
    if op is _sre.BRANCH:
        return [list(alt) for alt in av[1]]
    if op in (_sre.ASSERT, _sre.ASSERT_NOT):
        return [list(av[1])]
    if op is _sre.ATOMIC_GROUP:
        return [list(av)]
    if op is _sre.GROUPREF_EXISTS:
        return [list(av[1])] + ([list(av[2])] if av[2] else [])
    return []


def _has_ambiguous_repeat(items: list[Any]) -> bool:
    for op, av in items:
        if op in _REPEATS and av[1] > _FEW_REPEATS and _ambiguous_body(list(av[2])):
            return True
        if any(_has_ambiguous_repeat(child) for child in _children(op, av)):
            return True
    return False


def _ambiguous_body(body: list[Any]) -> bool:
    """Whether one iteration's text can be matched, or split across iterations, in more than one way."""
    for chars, separators in _inner_repeats(body, []):
        if not any(separator.isdisjoint(chars) for separator in separators):
            return True
    return _overlapping_branch(body)


def _inner_repeats(items: list[Any], separators: list[frozenset[int]]) -> Iterator[tuple[frozenset[int], list[frozenset[int]]]]:
    """Each variable-length repetition inside a repeated body, with the characters of every element that must
    match alongside it; one of those disjoint from the repetition's own characters pins where each match ends."""
    for i, (op, av) in enumerate(items):
        around = separators + [_chars([item]) for j, item in enumerate(items) if j != i and not _nullable(item)]
        if op in _REPEATS and av[1] > max(av[0], 1):
            yield _chars(list(av[2])), around
        if op is not _sre.ATOMIC_GROUP:
            for child in _children(op, av):
                yield from _inner_repeats(child, around)


def _overlapping_branch(items: list[Any], around: frozenset[int] = frozenset()) -> bool:
    """Whether a choice inside a repeated body can match the same text two ways: both alternatives empty (re
    factors `(a|a)` into `a(?:|)`), alike in start and characters (`(a|ab|b)`), or one empty and the other made of
    characters the rest of the body matches anyway (re factors `(a|aa)` into `a(?:|a)`)."""
    for i, (op, av) in enumerate(items):
        here = around.union(*(_chars([item]) for j, item in enumerate(items) if j != i))
        if op is _sre.BRANCH:
            alternatives = [list(alt) for alt in av[1]]
            for k, first in enumerate(alternatives):
                for second in alternatives[k + 1:]:
                    if _same_text_two_ways(first, second, here):
                        return True
        if op is not _sre.ATOMIC_GROUP and any(_overlapping_branch(child, here) for child in _children(op, av)):
            return True
    return False


def _same_text_two_ways(first: list[Any], second: list[Any], around: frozenset[int]) -> bool:
    empty_first, empty_second = (all(_nullable(item) for item in alt) for alt in (first, second))
    if empty_first and empty_second:
        return True
    a, b = _chars(first), _chars(second)
    if _first_chars(first) & _first_chars(second) and (a <= b or b <= a):
        return True
    return bool(around) and ((empty_first and b <= around) or (empty_second and a <= around))


def _nullable(item: Any) -> bool:
    op, av = item
    if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN):
        return False
    if op in _REPEATS or op is _sre.POSSESSIVE_REPEAT:
        return av[0] == 0 or all(_nullable(i) for i in av[2])
    if op is _sre.BRANCH:
        return any(all(_nullable(i) for i in alt) for alt in av[1])
    if op in (_sre.SUBPATTERN, _sre.ATOMIC_GROUP):
        return all(_nullable(i) for i in _children(op, av)[0])
    return True  # anchors and lookarounds consume nothing; a backreference may be empty


def _first_chars(items: list[Any]) -> frozenset[int]:
    out: set[int] = set()
    for op, av in items:
        children = _children(op, av)
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            continue
        out |= _chars([(op, av)]) if not children else frozenset().union(*(_first_chars(c) for c in children))
        if not _nullable((op, av)):
            break
    return frozenset(out)


def _chars(items: list[Any]) -> frozenset[int]:
    """Every character the items can consume (a superset, which keeps the check on the cautious side)."""
    out: set[int] = set()
    for op, av in items:
        if op is _sre.LITERAL:
            out.add(min(av, _OTHER))
        elif op is _sre.NOT_LITERAL or op is _sre.ANY or op is _sre.GROUPREF:
            out |= _ANY_CHAR
        elif op is _sre.IN:
            out |= _class_chars(av)
        elif op not in (_sre.ASSERT, _sre.ASSERT_NOT):
            for child in _children(op, av):
                out |= _chars(child)
    return frozenset(out)


_CATEGORY_REGEX = {
    _sre.CATEGORY_DIGIT: r"\d", _sre.CATEGORY_NOT_DIGIT: r"\D", _sre.CATEGORY_SPACE: r"\s",
    _sre.CATEGORY_NOT_SPACE: r"\S", _sre.CATEGORY_WORD: r"\w", _sre.CATEGORY_NOT_WORD: r"\W",
}


def _class_chars(members: list[Any]) -> frozenset[int]:
    out: set[int] = set()
    negate = False
    for op, av in members:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            out.add(min(av, _OTHER))
        elif op is _sre.RANGE:
            out |= set(range(min(av[0], _OTHER), min(av[1], _OTHER - 1) + 1))
            if av[1] >= _OTHER:
                out.add(_OTHER)
        elif op is _sre.CATEGORY and av in _CATEGORY_REGEX:
            regex = re.compile(_CATEGORY_REGEX[av])
            out |= {c for c in range(_OTHER) if regex.fullmatch(chr(c))} | {_OTHER}
        else:  # a category re reads from the locale: assume it can match anything
            out |= _ANY_CHAR
    return frozenset(_ANY_CHAR - out | {_OTHER}) if negate else frozenset(out)
