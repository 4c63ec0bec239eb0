"""The schema store: fetches Reflekt schemas from S3 or a folder, compiles them once and caches them with a TTL."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote

import fastjsonschema

from .config import S3Location
from .errors import S3Error, SchemaStoreUnavailableError
from .log import get_logger
from .patterns import dangerous_patterns
from .plans import IndexEntry, SchemaIndex, entry_from_document, entry_from_path, index_key, read_index_document
from .s3 import POOL_CONNECTIONS_PER_HOST, BucketPrefix, NotModified, S3Client

# fastjsonschema compiles these faithfully; it silently ignores keywords of later drafts, so those are refused.
SUPPORTED_DIALECTS = {
    "json-schema.org/draft-04/schema": "draft-04",
    "json-schema.org/draft-06/schema": "draft-06",
    "json-schema.org/draft-07/schema": "draft-07",
}
# Reflekt writes draft-07; a schema that names no dialect is read as that.
DEFAULT_DIALECT = "http://json-schema.org/draft-07/schema#"
# A Reflekt $id is a relative path of plain segments ending in .json (e.g. segment/demo/Test_Event/1-0.json).
SCHEMA_ID_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
SCHEMA_ID_PATTERN = re.compile(rf"{SCHEMA_ID_SEGMENT}(?:/{SCHEMA_ID_SEGMENT})*\.json")
# S3 keys stop at 1,024 bytes; real ids are far shorter, and a cap keeps junk out of logs and cache keys.
MAX_SCHEMA_ID_LENGTH = 512
# An id that does not exist is looked up again after this long, so publishing it takes effect quickly
# while a stream of events naming it costs one S3 request per interval, not one per event.
MISSING_SCHEMA_TTL_SECONDS = 10.0
# While the store is down, a cached schema is served and the store retried after this long.
STALE_RETRY_SECONDS = 5.0
# Schemas fetched from S3 at once when a request needs several that are not cached (a cold start's batch, or one
# after the TTL): each GET is an in-region round trip, 15-50 ms, so one after another they add up. As many as the
# S3 client's pool keeps connections for, so none is opened only to be closed.
CONCURRENT_S3_FETCHES = POOL_CONNECTIONS_PER_HOST

log = get_logger()


class CompiledSchema(NamedTuple):
    schema_id: str
    validate: Callable[[Any], Any]
    risky_patterns: tuple[str, ...] = ()  # regexes open to catastrophic backtracking (ReDoS), found at compile
    # The names it plans at its top level; None when that cannot be told (see declared_names).
    declared: frozenset[str] | None = frozenset()


class UnusableSchema(NamedTuple):
    """Why a schema id cannot validate anything; events naming it are invalid with this reason."""

    schema_id: str
    reason: str


Schema = CompiledSchema | UnusableSchema


class Fetched(NamedTuple):
    body: bytes
    version: str  # an ETag or a file stamp: equal versions mean equal bodies


class Catalog(NamedTuple):
    """Every schema's id and name, and its version where the source knows it, as a source lists them."""

    entries: tuple[IndexEntry, ...]
    version: str | None  # the index object's ETag; None when the schemas were listed (nothing to compare next time)


class Indexed(NamedTuple):
    """A catalog as the store keeps it: the index of names, and the version of each schema it lists."""

    index: SchemaIndex
    versions: Mapping[str, str]  # schema id -> the version (ETag) the catalog saw; only ids whose version it knew

    @classmethod
    def of(cls, catalog: Catalog) -> Indexed:
        return cls(SchemaIndex(catalog.entries), {e.schema_id: e.etag for e in catalog.entries if e.etag})


NOT_MODIFIED = object()


class SchemaSource(Protocol):
    concurrency: int  # how many fetches are worth making at once (1: one after another)

    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        """The schema's body; NOT_MODIFIED if it is still `known_version`; None if there is no such schema.

        Raises SchemaStoreUnavailableError when the answer is unknown.
        """

    def catalog(self, known_version: str | None) -> Catalog | object:
        """Every schema's id and name; NOT_MODIFIED if still `known_version`. Raises SchemaStoreUnavailableError."""


def is_valid_schema_id(schema_id: object) -> bool:
    return (
        isinstance(schema_id, str)
        and len(schema_id) <= MAX_SCHEMA_ID_LENGTH
        and SCHEMA_ID_PATTERN.fullmatch(schema_id) is not None
        and ".." not in schema_id.split("/")
    )


class DirectorySource:
    """A Reflekt project's schemas/ folder; ids are confined to it."""

    concurrency = 1  # reading a file is quick; compiling, the slow part, holds the GIL

    def __init__(self, root: Path):
        self.root = root.resolve()

    def __str__(self) -> str:
        return f"folder {self.root}"

    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        path = (self.root / schema_id).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        try:
            version = _stamp(path)
            if version == known_version:
                return NOT_MODIFIED
            return Fetched(path.read_bytes(), version)
        except OSError as e:
            raise SchemaStoreUnavailableError(f"cannot read {path}: {e.strerror}") from e

    def catalog(self, known_version: str | None) -> Catalog | object:
        """Walks the folder, reading each schema's self.name and version: a local folder is cheap to walk at every
        refresh."""
        entries = []
        for path in sorted(self.root.rglob("*.json")):
            schema_id = path.relative_to(self.root).as_posix()
            if not is_valid_schema_id(schema_id) or not path.resolve().is_relative_to(self.root):
                continue  # never served by fetch either (Reflekt's .reflekt/ meta-schema, links out of the root)
            try:
                version = _stamp(path)  # before the read: a file changed in between is read again next time
                entry = entry_from_document(schema_id, json.loads(path.read_bytes()))
            except (OSError, ValueError, RecursionError):  # unreadable now: fetch says why when an event needs it
                version, entry = "", entry_from_path(schema_id)
            if entry is not None:
                entries.append(entry._replace(etag=version))
        return Catalog(tuple(entries), None)


class S3Source(BucketPrefix):
    """Objects under a prefix of a bucket; conditional GETs make an unchanged schema cost no download."""

    concurrency = CONCURRENT_S3_FETCHES

    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        return self._get(self.location.prefix + schema_id, known_version)

    def catalog(self, known_version: str | None) -> Catalog | object:
        """The index publish wrote (one conditional GET); without a usable one, a listing of the prefix, whose
        names come from Reflekt's folder layout (one request per 1,000 schemas). Both carry each schema's ETag."""
        fetched = self._get(index_key(self.location.prefix), known_version)
        if fetched is NOT_MODIFIED:
            return NOT_MODIFIED
        if isinstance(fetched, Fetched):
            try:
                entries = read_index_document(fetched.body, self.location.prefix)
                # An id fetch would refuse is no schema, whoever wrote the index.
                return Catalog(tuple(e for e in entries if is_valid_schema_id(e.schema_id)), fetched.version)
            except ValueError as e:  # json errors are ValueErrors too
                log.error("schema index is unusable; listing the schemas instead",
                          extra={"fields": {"key": index_key(self.location.prefix), "error": str(e)[:200]}})
        listed = ((entry_from_path(schema_id), etag) for schema_id, etag in self._list())
        return Catalog(tuple(entry._replace(etag=etag) for entry, etag in listed if entry is not None), None)

    def _get(self, key: str, known_version: str | None) -> Fetched | object | None:
        try:
            found = self.client.get(self.location.bucket, key, if_none_match=known_version)
        except S3Error as e:
            raise SchemaStoreUnavailableError(str(e)) from e
        if found is None:
            return None
        if isinstance(found, NotModified):
            return NOT_MODIFIED
        return Fetched(found.body, found.etag)

    def _list(self) -> list[tuple[str, str]]:
        """The schema ids under the prefix, with their ETags: ListObjectsV2 pages of up to 1,000 keys."""
        prefix = self.location.prefix
        try:
            listed = [(item.key[len(prefix):], item.etag) for item in self.client.list(self.location.bucket, prefix)]
        except S3Error as e:
            raise SchemaStoreUnavailableError(str(e)) from e
        return [(schema_id, etag) for schema_id, etag in listed if is_valid_schema_id(schema_id)]


class _Entry:
    """A cached schema or index; `expires` moves forward each time the store confirms it."""

    __slots__ = ("value", "version", "expires")

    def __init__(self, value: Any, version: str | None, expires: float):
        self.value = value
        self.version = version
        self.expires = expires


class SchemaStore:
    """Compiled schemas by id, and the index of their names, kept across warm invocations and refreshed after
    `ttl` seconds.

    Freshness costs a constant number of requests per TTL, however many schemas are in use: the catalog (publish's
    index, or a listing) carries every schema's version, so a cached schema whose version it still lists is current
    without a request of its own; only a changed schema, or one the catalog does not vouch for, is fetched.
    """

    def __init__(self, source: SchemaSource, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, _Entry] = {}
        self._index: _Entry | None = None
        self._lock = threading.Lock()
        # Taken inside _lock, or alone by prefetch's workers, which may all find the index due at once: one asks the
        # source, the others find its answer.
        self._index_lock = threading.Lock()

    def get(self, schema_id: str) -> Schema:
        entry = self._cache.get(schema_id)
        if entry is not None and self.clock() < entry.expires:
            return entry.value
        with self._lock:
            return self._refresh(schema_id)

    def index(self) -> SchemaIndex:
        """Every schema's name and versions; the bodies are fetched by `get` only when an event needs one."""
        entry = self._index
        if entry is not None and self.clock() < entry.expires:
            return entry.value.index
        with self._lock:
            return self._refresh_index().index

    def prefetch(self, schema_ids: Iterable[str]) -> None:
        """Refreshes those of the ids that are not cached or have expired, as `get` would, several at once when
        the source allows: the requests that follow find them cached. Fails as the first of them to fail would
        have failed `get` (the store is down and nothing is cached), after all have been tried."""
        now = self.clock()
        due = [schema_id for schema_id in dict.fromkeys(schema_ids)
               if (entry := self._cache.get(schema_id)) is None or now >= entry.expires]
        workers = min(len(due), self.source.concurrency)
        if workers < 2:  # `get` fetches a lone one in this thread
            return
        from concurrent.futures import ThreadPoolExecutor  # only a cold or expired batch of several gets here

        with self._lock:
            with ThreadPoolExecutor(workers, thread_name_prefix="schemas") as pool:
                failures = [failure for failure in pool.map(self._refresh_or_failure, due) if failure is not None]
        if failures:
            raise failures[0]

    def _refresh_or_failure(self, schema_id: str) -> SchemaStoreUnavailableError | None:
        """Refreshes one id for prefetch, whose lock it runs under; no two run for the same id."""
        try:
            self._refresh(schema_id)
        except SchemaStoreUnavailableError as e:
            return e
        return None

    def clear(self) -> None:
        self._cache.clear()
        self._index = None

    def _refresh(self, schema_id: str) -> Schema:
        entry = self._cache.get(schema_id)
        now = self.clock()
        if entry is not None and now < entry.expires:  # another thread refreshed it while this one waited
            return entry.value
        try:
            if entry is not None and self._vouches_for(schema_id, entry.version):
                # Current as of the catalog's refresh, so it expires with the catalog: never staler than a TTL.
                entry.expires = self._index.expires  # type: ignore[union-attr]  # _vouches_for kept a catalog
                return entry.value
            fetched = self.source.fetch(schema_id, entry.version if entry else None)
        except SchemaStoreUnavailableError as e:
            return self._stale(entry, now, e, "schema", {"schema_id": schema_id})
        if fetched is NOT_MODIFIED and entry is not None:
            entry.expires = now + self.ttl
            return entry.value
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
            if schema.risky_patterns:  # still served: refusing a live schema would send its events to the invalid source
                log.warning("schema has patterns open to catastrophic backtracking (ReDoS)",
                            extra={"fields": {"schema_id": schema_id, "patterns": list(schema.risky_patterns)}})
        self._cache[schema_id] = _Entry(schema, fetched.version, now + self.ttl)
        return schema

    def _vouches_for(self, schema_id: str, version: str | None) -> bool:
        """Whether the catalog (refreshed when due: one request for publish's index) lists the schema at `version`."""
        return version is not None and self._refresh_index().versions.get(schema_id) == version

    def _refresh_index(self) -> Indexed:
        with self._index_lock:
            entry = self._index
            now = self.clock()
            if entry is not None and now < entry.expires:
                return entry.value
            try:
                catalog = self.source.catalog(entry.version if entry else None)
            except SchemaStoreUnavailableError as e:
                return self._stale(entry, now, e, "schema index", {"source": str(self.source)})
            if catalog is NOT_MODIFIED and entry is not None:
                entry.expires = now + self.ttl
                return entry.value
            assert isinstance(catalog, Catalog)
            indexed = Indexed.of(catalog)
            log.info("indexed schemas", extra={"fields": {
                "source": str(self.source), "schemas": indexed.index.size, "version": catalog.version}})
            self._index = _Entry(indexed, catalog.version, now + self.ttl)
            return indexed

    def _stale(self, entry: _Entry | None, now: float, error: SchemaStoreUnavailableError, what: str,
               fields: dict[str, str]) -> Any:
        """What was cached, served while the store is down and retried soon; with nothing cached, the outage."""
        if entry is None:
            raise error
        log.warning(f"serving cached {what} while the store is unavailable", extra={"fields": {**fields, "error": str(error)}})
        entry.expires = now + min(self.ttl, STALE_RETRY_SECONDS)
        return entry.value


def _stamp(path: Path) -> str:
    """A local file's version: equal stamps mean equal bodies, as far as a file system can tell."""
    stat = path.stat()
    return f"{stat.st_mtime_ns}-{stat.st_size}"


def open_store(location: S3Location | Path, ttl: float, s3: S3Client | None = None) -> SchemaStore:
    """A store over the folder, or over the bucket through `s3` (required then)."""
    if isinstance(location, S3Location):
        if s3 is None:
            raise ValueError(f"schemas in s3://{location.bucket} need an S3 client")
        return SchemaStore(S3Source(location, s3), ttl)
    return SchemaStore(DirectorySource(location), ttl)


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
    return CompiledSchema(schema_id, validate, tuple(dangerous_patterns(document)), declared_names(document))


# Keywords under which a schema can accept a property name without listing it in "properties": where one is met,
# which names are planned cannot be told from the schema's text, so none is treated as unplanned.
_OPAQUE_KEYWORDS = ("anyOf", "oneOf", "if", "patternProperties", "dependencies")
# allOf/$ref chains deeper than this in a tracking plan's schema are not real; give up rather than recurse on.
MAX_DECLARATION_DEPTH = 16


def declared_names(document: Mapping[str, Any]) -> frozenset[str] | None:
    """The property names a schema plans at its top level, through local $refs and allOf; None when that cannot be
    told (see _OPAQUE_KEYWORDS), so that omitting unplanned properties never drops one the schema accepts."""
    names: set[str] = set()
    followed: set[str] = set()

    def collect(node: Any, depth: int) -> bool:
        if not isinstance(node, dict) or depth > MAX_DECLARATION_DEPTH:
            return isinstance(node, bool)  # true/false schemas plan no names; anything else is not understood
        if any(keyword in node for keyword in _OPAQUE_KEYWORDS):
            return False
        properties = node.get("properties", {})
        if not isinstance(properties, dict):
            return False
        names.update(properties)
        ref = node.get("$ref")
        if ref is not None and not isinstance(ref, str):
            return False
        if ref is not None and ref not in followed:  # a ref followed once already gave its names: loops end here
            followed.add(ref)
            if not collect(_local_target(document, ref), depth + 1):
                return False
        parts = node.get("allOf", [])
        return isinstance(parts, list) and all(collect(part, depth + 1) for part in parts)

    return frozenset(names) if collect(document, 0) else None


def _local_target(document: Mapping[str, Any], ref: Any) -> Any:
    """What a '#/a/b' pointer names in the document, or None for any other reference."""
    if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
        return None
    node: Any = document
    for token in ref[2:].split("/") if ref != "#" else ():
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node
