"""The schema store: which ids are accepted, where schemas are read from, how they compile and how long they are kept."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.s3 import FAULTS as S3_FAULTS
from fakes.s3 import FakeS3
from helpers import EXAMPLE_SCHEMAS, TEST_EVENT
from s3_support import CountingPool
from reflekt_registry.config import Credentials, S3Endpoint, S3Location
from reflekt_registry.errors import SchemaStoreUnavailableError
from reflekt_registry.plans import IndexEntry, entry_from_path, index_document, index_key
from reflekt_registry.schemas import (LINEAR_FORMATS, MAX_SCHEMA_ID_LENGTH, MISSING_SCHEMA_TTL_SECONDS, NOT_MODIFIED,
                                      STALE_RETRY_SECONDS, Catalog, CompiledSchema, DirectorySource, Fetched,
                                      S3Source, SchemaStore, UnusableSchema, compile_schema, is_valid_schema_id)
from reflekt_registry.s3 import S3Client

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
ORDER = "jaffle_shop/Order_Completed/1-0.json"


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def accepts(schema: CompiledSchema, data: Any) -> bool:
    try:
        schema.validate(data)
    except (fastjsonschema.JsonSchemaValueException, fastjsonschema.JsonSchemaValuesException):
        return False
    return True


def write(root: Path, schema_id: str, content: bytes | str) -> Path:
    path = root / schema_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# -- schema ids -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schema_id", [
    TEST_EVENT,
    ORDER,
    "Order_Completed/1-0.json",
    "x.json",
    "plan/v1.2/Event-Name/1-0.json",
    "a" * (MAX_SCHEMA_ID_LENGTH - len(".json")) + ".json",
])
def test_reflekt_ids_are_accepted(schema_id):
    """A relative path of plain segments ending in .json, up to the length cap, is a schema id."""
    assert is_valid_schema_id(schema_id)


def test_every_example_schema_is_named_by_an_accepted_id():
    """The ids Reflekt writes into $id are exactly the ones the registry accepts, and match the file's path."""
    paths = sorted(EXAMPLE_SCHEMAS.rglob("*.json"))
    assert paths
    for path in paths:
        schema_id = path.relative_to(EXAMPLE_SCHEMAS).as_posix()
        assert json.loads(path.read_text())["$id"] == schema_id
        assert is_valid_schema_id(schema_id), schema_id


@pytest.mark.parametrize("schema_id", [
    "../x.json",
    "a/../../x.json",
    "a/./x.json",
    "a//x.json",
    "/etc/passwd.json",
    "file:///x.json",
    "http://h/x.json",
    "C:\\x.json",
    "a\\..\\x.json",
    "~/x.json",
    "a%2F..%2Fx.json",
    "",
    " ",
    " a/x.json",
    "a/x.json ",
    "a/x.json\n",
    "a\x00/x.json",
    ".reflekt/meta/1-0.json",
    ".json",
    "a/x",
    "a/x.JSON",
    "a/x.json/",
    "a" * 595 + ".json",
    "a" * (MAX_SCHEMA_ID_LENGTH - len(".json") + 1) + ".json",
    None,
    5,
    b"a/x.json",
    ["a/x.json"],
    {"$id": "a/x.json"},
], ids=repr)
def test_path_tricks_and_non_ids_are_refused(schema_id):
    """Anything that could leave the schema folder or prefix, or is not a string path ending in .json, is refused."""
    assert not is_valid_schema_id(schema_id)


# -- DirectorySource ------------------------------------------------------------------------------------------

@pytest.fixture
def layout(tmp_path):
    """A schemas/ root and a secret just outside it."""
    root = tmp_path / "schemas"
    write(root, TEST_EVENT, '{"type": "object"}')
    write(tmp_path, "secret.json", '{"secret": true}')
    return root


def test_directory_source_reads_a_schema_and_says_when_it_is_unchanged(layout):
    """A fetch returns the body and a version; the same version is NOT_MODIFIED; an edit yields the new body."""
    source = DirectorySource(layout)
    first = source.fetch(TEST_EVENT, None)
    assert isinstance(first, Fetched) and first.body == b'{"type": "object"}'
    assert source.fetch(TEST_EVENT, first.version) is NOT_MODIFIED
    write(layout, TEST_EVENT, '{"type": "string", "minLength": 1}')
    second = source.fetch(TEST_EVENT, first.version)
    assert isinstance(second, Fetched) and second.body == b'{"type": "string", "minLength": 1}'
    assert second.version != first.version


@pytest.mark.parametrize("schema_id", ["segment/demo/Nope/1-0.json", "segment/demo", "segment"])
def test_directory_source_has_no_schema_for_a_missing_file_or_a_folder(layout, schema_id):
    """Only regular files are schemas; anything else is 'no such schema'."""
    assert DirectorySource(layout).fetch(schema_id, None) is None


@pytest.mark.parametrize("schema_id", ["../secret.json", "segment/../../secret.json", "SECRET_ABSOLUTE"])
def test_directory_source_never_reads_outside_its_root(layout, schema_id):
    """Even an id that slipped past is_valid_schema_id cannot name a file outside the root."""
    if schema_id == "SECRET_ABSOLUTE":
        schema_id = str(layout.parent / "secret.json")
    assert DirectorySource(layout).fetch(schema_id, None) is None


def test_directory_source_does_not_follow_a_symlinked_file_out_of_the_root(layout):
    """A link inside the root to a file outside it is not served."""
    (layout / "segment" / "leak.json").symlink_to(layout.parent / "secret.json")
    assert DirectorySource(layout).fetch("segment/leak.json", None) is None


def test_directory_source_does_not_follow_a_symlinked_folder_out_of_the_root(layout):
    """A link inside the root to a folder outside it does not open that folder."""
    (layout / "outside").symlink_to(layout.parent, target_is_directory=True)
    assert DirectorySource(layout).fetch("outside/secret.json", None) is None


def test_directory_source_serves_links_that_stay_inside_the_root(layout, tmp_path):
    """Confinement is by where a path resolves to: links within the root, and a linked root, still work."""
    (layout / "alias.json").symlink_to(layout / TEST_EVENT)
    linked_root = tmp_path / "linked-schemas"
    linked_root.symlink_to(layout, target_is_directory=True)
    assert DirectorySource(layout).fetch("alias.json", None).body == b'{"type": "object"}'
    assert DirectorySource(linked_root).fetch(TEST_EVENT, None).body == b'{"type": "object"}'


# -- compile_schema: dialects -------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("draft", ["draft-04", "draft-06", "draft-07"])
@pytest.mark.parametrize("hash_sign", ["#", ""])
def test_supported_drafts_compile(scheme, draft, hash_sign):
    """draft-04, -06 and -07 compile however their $schema URI is spelled."""
    schema = compile_schema("a/x.json", body({"$schema": f"{scheme}://json-schema.org/{draft}/schema{hash_sign}",
                                              "type": "string"}))
    assert isinstance(schema, CompiledSchema)
    assert accepts(schema, "x") and not accepts(schema, 1)


def test_a_schema_without_dialect_is_read_as_draft_07():
    """No $schema means draft-07, not draft-04 and not fastjsonschema's own default (its 2019-09 generator)."""
    numeric_exclusive = compile_schema("a/x.json", body({"type": "number", "exclusiveMinimum": 5}))
    assert not accepts(numeric_exclusive, 5) and accepts(numeric_exclusive, 6)  # draft-04 wants a boolean there
    const = compile_schema("a/x.json", body({"const": 3}))
    assert not accepts(const, 4)  # draft-04 has no const and would accept anything
    # 'duration' is a format only from 2019-09 on; fastjsonschema's default generator would assert it.
    duration = compile_schema("a/x.json", body({"type": "string", "format": "duration"}))
    assert accepts(duration, "not a duration")


@pytest.mark.parametrize("declared", [
    "https://json-schema.org/draft/2019-09/schema",
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-03/schema#",
    "http://json-schema.org/schema#",
    "http://example.com/json-schema.org/draft-07/schema#",
    "",
    7,
    None,
])
def test_other_dialects_are_refused_with_the_reason(declared):
    """A later (or unknown) dialect is refused, because fastjsonschema would silently ignore its keywords."""
    schema = compile_schema(ORDER, body({"$schema": declared, "type": "object", "unevaluatedProperties": False}))
    assert isinstance(schema, UnusableSchema)
    assert schema.schema_id == ORDER
    assert repr(ORDER) in schema.reason
    assert "only draft-04, draft-06 and draft-07 are supported" in schema.reason


# -- compile_schema: unusable documents ---------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"not json",
    b"{",
    b"\xff\xfe",
    b"",
    b"[1]",
    b'"schema"',
    b"true",
    b"null",
    body({"type": "strin"}),
    body({"properties": 5}),
    body({"pattern": "("}),
    body({"required": "name"}),
    body({"minimum": "zero"}),
    body({"additionalProperties": 3}),
    body({"$ref": 5}),
    body({"$ref": "#/definitions/missing"}),
], ids=repr)
def test_unusable_documents_say_why_and_name_the_schema(content):
    """Not JSON, not an object, or bad keyword values: an UnusableSchema whose reason names the schema id."""
    schema = compile_schema(ORDER, content)
    assert isinstance(schema, UnusableSchema)
    assert schema.schema_id == ORDER
    assert repr(ORDER) in schema.reason


# -- compile_schema: $ref ---------------------------------------------------------------------------------------

class _Loopback(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class _ServeInteger(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        payload = b'{"type": "integer"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback(monkeypatch):
    """A schema server on 127.0.0.1 that counts every connection made to it."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # urlopen would otherwise take the premise check to a proxy
    server = _Loopback(("127.0.0.1", 0), _ServeInteger)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("shape", ["top-level http", "nested https", "relative to a nested $id", "under definitions"])
def test_remote_refs_are_refused_without_a_request(loopback, shape):
    """A $ref to http(s) makes the schema unusable, and nothing is fetched from the address it names."""
    base = f"127.0.0.1:{loopback.server_address[1]}"
    document = {
        "top-level http": {"$ref": f"http://{base}/x.json"},
        "nested https": {"properties": {"a": {"$ref": f"https://{base}/x.json"}}},
        "relative to a nested $id": {"properties": {"a": {"$id": f"http://{base}/dir/a.json",
                                                          "properties": {"b": {"$ref": "other.json"}}}}},
        "under definitions": {"definitions": {"p": {"$ref": f"http://{base}/p.json"}},
                              "properties": {"a": {"$ref": "#/definitions/p"}}},
    }[shape]
    schema = compile_schema(ORDER, body(document))
    assert isinstance(schema, UnusableSchema)
    assert "points outside the schema" in schema.reason
    assert loopback.connections == 0
    # The premise: plain fastjsonschema does go there, so the counter above would have seen it.
    with contextlib.suppress(Exception):
        fastjsonschema.compile(copy.deepcopy(document))
    assert loopback.connections >= 1


def test_file_refs_are_refused(tmp_path):
    """A $ref to file:// is refused even when the file exists and holds a good schema."""
    target = write(tmp_path, "integer.json", '{"type": "integer"}')
    document = {"properties": {"a": {"$ref": target.as_uri()}}}
    schema = compile_schema(ORDER, body(document))
    assert isinstance(schema, UnusableSchema)
    assert target.as_uri() in schema.reason
    # The premise: plain fastjsonschema reads the file, so refusing it is the registry's doing.
    assert fastjsonschema.compile(copy.deepcopy(document))({"a": 1}) == {"a": 1}


@pytest.mark.parametrize("ref", ["other.json", "../common/Product/1-0.json", "//127.0.0.1:9/x.json"])
def test_relative_refs_to_other_documents_are_refused(ref):
    """A ref to another document, however it is spelled, is refused with a message that says so."""
    schema = compile_schema(ORDER, body({"properties": {"a": {"$ref": ref}}}))
    assert isinstance(schema, UnusableSchema)
    assert "points outside the schema" in schema.reason


@pytest.mark.parametrize("draft,id_keyword", [
    ("draft-07", "$id"),
    ("draft-06", "$id"),
    ("draft-04", "$id"),
    ("draft-04", "id"),  # draft-04 spells its id keyword without the dollar
])
def test_local_refs_resolve_next_to_a_relative_id(draft, id_keyword):
    """'#/definitions/x' refs work in a schema carrying Reflekt's relative id, in every supported draft."""
    document = {
        "$schema": f"http://json-schema.org/{draft}/schema#",
        id_keyword: "jaffle_shop/Cart_Viewed/1-0.json",
        "definitions": {"price": {"type": "number", "minimum": 0}},
        "type": "object",
        "properties": {"total": {"$ref": "#/definitions/price"},
                       "prices": {"type": "array", "items": {"$ref": "#/definitions/price"}}},
    }
    schema = compile_schema("jaffle_shop/Cart_Viewed/1-0.json", body(document))
    assert isinstance(schema, CompiledSchema), getattr(schema, "reason", "")
    assert accepts(schema, {"total": 1, "prices": [0, 2.5]})
    assert not accepts(schema, {"total": -1})
    assert not accepts(schema, {"prices": [1, "x"]})


def test_validation_never_writes_defaults_into_the_event():
    """Schema defaults are not filled in: what is forwarded is what the client sent."""
    schema = compile_schema("a/x.json", body({
        "type": "object",
        "properties": {"plan": {"type": "string", "default": "free"},
                       "cart": {"type": "object", "default": {}, "properties": {"currency": {"default": "USD"}}}},
    }))
    event = {"cart": {}}
    schema.validate(event)
    assert event == {"cart": {}}


# -- SchemaStore --------------------------------------------------------------------------------------------------

THING = "t/Thing/1-0.json"
STRING_SCHEMA = body({"$schema": DRAFT_07, "type": "string"})
INTEGER_SCHEMA = body({"$schema": DRAFT_07, "type": "integer"})


class FakeSource:
    """Schemas in memory, versioned by content like ETags; records each fetch and catalog, and can be taken down.

    Its catalog lists every schema's version only when `lists_versions` (as publish's index does now); otherwise it
    lists names alone, as an index written before indexes carried ETags, and every schema is re-checked by a fetch.
    """

    def __init__(self, schemas: dict[str, bytes] | None = None, lists_versions: bool = False, concurrency: int = 1):
        self.concurrency = concurrency
        self.schemas = dict(schemas or {})
        self.lists_versions = lists_versions
        self.fetches: list[tuple[str, str | None]] = []
        self.catalogs = 0
        self.down = False
        self.before_fetch = lambda: None
        self.before_catalog = lambda: None

    @property
    def requests(self) -> int:
        return len(self.fetches) + self.catalogs

    def __str__(self) -> str:
        return "the fake source"

    def fetch(self, schema_id: str, known_version: str | None) -> Fetched | object | None:
        self.fetches.append((schema_id, known_version))
        self.before_fetch()
        if self.down:
            raise SchemaStoreUnavailableError("the fake source is down")
        content = self.schemas.get(schema_id)
        if content is None:
            return None
        version = hashlib.sha256(content).hexdigest()
        return NOT_MODIFIED if version == known_version else Fetched(content, version)

    def catalog(self, known_version: str | None) -> Catalog:
        self.catalogs += 1
        self.before_catalog()
        if self.down:
            raise SchemaStoreUnavailableError("the fake source is down")
        listed = ((entry_from_path(schema_id), content) for schema_id, content in sorted(self.schemas.items()))
        return Catalog(tuple(entry._replace(etag=hashlib.sha256(content).hexdigest() if self.lists_versions else "")
                             for entry, content in listed if entry), None)


@pytest.fixture
def source():
    return FakeSource({THING: STRING_SCHEMA})


def test_a_schema_is_fetched_and_compiled_once_within_the_ttl(source, clock):
    """Within the TTL every lookup is served from memory: one fetch, one compiled object."""
    store = SchemaStore(source, ttl=60, clock=clock)
    first = store.get(THING)
    clock.advance(59.999)
    assert store.get(THING) is first
    assert source.fetches == [(THING, None)]


def test_an_unchanged_schema_is_not_recompiled_after_the_ttl(source, clock):
    """After the TTL the store asks 'changed since <version>?'; NOT_MODIFIED keeps the compiled schema another TTL."""
    store = SchemaStore(source, ttl=60, clock=clock)
    first = store.get(THING)
    clock.advance(60)
    assert store.get(THING) is first
    version = hashlib.sha256(STRING_SCHEMA).hexdigest()
    assert source.fetches == [(THING, None), (THING, version)]
    clock.advance(59.999)
    assert store.get(THING) is first
    assert len(source.fetches) == 2


def test_a_changed_schema_is_recompiled_after_the_ttl(source, clock):
    """A new body is compiled and used once the TTL has passed, and not before."""
    store = SchemaStore(source, ttl=60, clock=clock)
    first = store.get(THING)
    source.schemas[THING] = INTEGER_SCHEMA
    clock.advance(30)
    assert store.get(THING) is first
    clock.advance(30)
    second = store.get(THING)
    assert second is not first
    assert accepts(second, 1) and not accepts(second, "x")


@pytest.mark.parametrize("ttl,refetch_after", [(60, MISSING_SCHEMA_TTL_SECONDS), (2, 2)])
def test_an_unknown_id_is_remembered_for_a_short_while(clock, ttl, refetch_after):
    """An unknown id is unusable (naming id and source) and looked up again after min(TTL, MISSING_SCHEMA_TTL_SECONDS)."""
    source = FakeSource()
    store = SchemaStore(source, ttl=ttl, clock=clock)
    missing = store.get(THING)
    assert isinstance(missing, UnusableSchema)
    assert repr(THING) in missing.reason and "the fake source" in missing.reason
    clock.advance(refetch_after - 0.001)
    assert store.get(THING) is missing
    assert len(source.fetches) == 1
    source.schemas[THING] = STRING_SCHEMA
    clock.advance(0.001)
    assert isinstance(store.get(THING), CompiledSchema)
    assert len(source.fetches) == 2


def test_a_stream_of_events_naming_an_unknown_id_costs_one_fetch_per_interval(clock):
    """100 lookups over 50 s of an unknown id fetch it once per MISSING_SCHEMA_TTL_SECONDS, not once per event."""
    source = FakeSource()
    store = SchemaStore(source, ttl=60, clock=clock)
    for _ in range(100):
        store.get(THING)
        clock.advance(0.5)
    assert len(source.fetches) == int(50 // MISSING_SCHEMA_TTL_SECONDS)


def test_an_unusable_schema_is_kept_for_the_ttl_too(clock):
    """A broken schema is compiled (and logged) once per TTL, not once per event."""
    source = FakeSource({THING: b"{"})
    store = SchemaStore(source, ttl=60, clock=clock)
    first = store.get(THING)
    clock.advance(59)
    assert store.get(THING) is first
    assert isinstance(first, UnusableSchema) and len(source.fetches) == 1


@pytest.mark.parametrize("lists_versions", [False, True])
def test_a_cached_schema_is_served_while_the_source_is_down(clock, lists_versions):
    """A failing source serves the cached schema, retries every STALE_RETRY_SECONDS, and once back gives a full TTL;
    one failed request per retry, whether the catalog or the schema was asked."""
    source = FakeSource({THING: STRING_SCHEMA}, lists_versions)
    store = SchemaStore(source, ttl=60, clock=clock)
    first = store.get(THING)
    clock.advance(60)
    source.down = True
    assert store.get(THING) is first
    assert source.requests == 2
    clock.advance(STALE_RETRY_SECONDS - 0.001)
    assert store.get(THING) is first
    assert source.requests == 2
    clock.advance(0.001)
    source.down = False
    assert store.get(THING) is first
    answered = source.requests
    assert answered in (3, 4)  # the catalog, then (when it lists no versions) the schema's conditional fetch
    clock.advance(59.999)
    assert store.get(THING) is first
    assert source.requests == answered


def test_without_a_cached_schema_a_failing_source_raises_and_nothing_is_remembered(source, clock):
    """Nothing to fall back on: SchemaStoreUnavailableError; the failure is not cached as 'no such schema'."""
    store = SchemaStore(source, ttl=60, clock=clock)
    source.down = True
    with pytest.raises(SchemaStoreUnavailableError):
        store.get(THING)
    source.down = False
    assert isinstance(store.get(THING), CompiledSchema)
    assert len(source.fetches) == 2


def test_concurrent_lookups_of_an_expired_schema_fetch_it_once(source):
    """Threads that all find the entry expired wait for the one refresh instead of each fetching."""
    threads_count = 8
    calls = 0
    called = threading.Condition()

    def counting_clock() -> float:
        nonlocal calls
        with called:
            calls += 1
            called.notify_all()
            return 1000.0 if calls == 1 else 2000.0  # the first lookup primes; every later one finds it expired

    store = SchemaStore(source, ttl=60, clock=counting_clock)
    store.get(THING)

    def hold_until_everyone_saw_it_expired() -> None:
        # Each thread reads the clock once before taking the lock, the refreshing one once more after.
        with called:
            called.wait_for(lambda: calls >= 1 + threads_count + 1, timeout=5)

    source.before_fetch = hold_until_everyone_saw_it_expired
    results: list[Any] = []
    workers = [threading.Thread(target=lambda: results.append(store.get(THING))) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    assert len(results) == threads_count
    assert len(source.fetches) == 2  # the priming fetch and a single refresh
    assert source.catalogs == 1


# -- freshness through the catalog's versions ---------------------------------------------------------------

def test_a_schema_the_catalog_lists_at_its_cached_version_is_current_without_a_fetch(clock):
    """After the TTL, one catalog request confirms every cached schema at once: 100 schemas, no fetch of their own."""
    ids = [f"shop/Event_{i}/1-0.json" for i in range(100)]
    source = FakeSource({schema_id: STRING_SCHEMA for schema_id in ids}, lists_versions=True)
    store = SchemaStore(source, ttl=60, clock=clock)
    compiled = [store.get(schema_id) for schema_id in ids]
    for _ in range(3):
        clock.advance(60)
        assert [store.get(schema_id) for schema_id in ids] == compiled
    assert len(source.fetches) == 100  # the first fetches only
    assert source.catalogs == 3  # one per TTL


def test_a_schema_whose_version_changed_in_the_catalog_is_fetched_and_recompiled(clock):
    source = FakeSource({THING: STRING_SCHEMA, "t/Other/1-0.json": STRING_SCHEMA}, lists_versions=True)
    store = SchemaStore(source, ttl=60, clock=clock)
    first, other = store.get(THING), store.get("t/Other/1-0.json")
    source.schemas[THING] = INTEGER_SCHEMA
    clock.advance(60)
    second = store.get(THING)
    assert accepts(second, 1) and not accepts(second, "x")
    assert store.get("t/Other/1-0.json") is other
    assert source.fetches[2:] == [(THING, hashlib.sha256(STRING_SCHEMA).hexdigest())]


def test_a_schema_the_catalog_no_longer_lists_is_asked_for_and_found_gone(clock):
    source = FakeSource({THING: STRING_SCHEMA}, lists_versions=True)
    store = SchemaStore(source, ttl=60, clock=clock)
    store.get(THING)
    del source.schemas[THING]
    clock.advance(60)
    gone = store.get(THING)
    assert isinstance(gone, UnusableSchema) and "no schema" in gone.reason


def test_a_schema_confirmed_by_the_catalog_expires_with_it_so_a_change_shows_within_one_ttl(clock):
    """A schema first fetched mid-way through the catalog's TTL is confirmed only until the catalog's own refresh:
    otherwise a change could go unseen for almost two TTLs."""
    source = FakeSource({THING: STRING_SCHEMA, "t/Early/1-0.json": STRING_SCHEMA}, lists_versions=True)
    store = SchemaStore(source, ttl=60, clock=clock)
    store.get("t/Early/1-0.json")
    clock.advance(30)
    first = store.get(THING)  # fetched at 30, expires at 90
    clock.advance(30)
    store.get("t/Early/1-0.json")  # at 60: the catalog is read, good until 120
    clock.advance(30)
    assert store.get(THING) is first  # at 90: confirmed by that catalog, without a request, until 120
    assert (len(source.fetches), source.catalogs) == (2, 1)
    source.schemas[THING] = INTEGER_SCHEMA  # changed at 90
    clock.advance(29.999)
    assert store.get(THING) is first
    clock.advance(0.001)  # at 120, 30 s after the change
    assert accepts(store.get(THING), 1)


def test_ids_outside_reflekts_layout_are_checked_with_their_own_fetch(clock):
    """The catalog lists only <Event_Name>/<MAJOR>-<MINOR>.json files; any other id still works, fetched per TTL."""
    source = FakeSource({"loose.json": STRING_SCHEMA}, lists_versions=True)
    store = SchemaStore(source, ttl=60, clock=clock)
    first = store.get("loose.json")
    clock.advance(60)
    assert store.get("loose.json") is first
    assert source.fetches == [("loose.json", None), ("loose.json", hashlib.sha256(STRING_SCHEMA).hexdigest())]


# -- prefetch: the schemas of a batch at once ------------------------------------------------------------

OTHER = "t/Other/1-0.json"
BROKEN = "t/Broken/1-0.json"
UNKNOWN = "t/Unknown/1-0.json"


def test_prefetch_fetches_each_uncached_id_once_and_at_most_the_sources_concurrency_at_once(clock):
    """Seven ids through a source that takes three at once: the first three fetches are in flight together (they
    meet at a barrier), no more than three ever are, each id is fetched once, and the gets after it fetch nothing."""
    ids = [f"t/Thing_{n}/1-0.json" for n in range(7)]
    source = FakeSource(dict.fromkeys(ids, STRING_SCHEMA), concurrency=3)
    in_flight = peak = 0
    counting = threading.Lock()
    first_three = threading.Barrier(3, timeout=5)

    def count_and_meet() -> None:
        nonlocal in_flight, peak
        with counting:
            in_flight += 1
            peak = max(peak, in_flight)
            first = len(source.fetches) <= 3  # a fourth fetch starts only once one of the first three is done
        if first:
            first_three.wait()
        with counting:
            in_flight -= 1

    source.before_fetch = count_and_meet
    store = SchemaStore(source, ttl=60, clock=clock)
    store.prefetch(ids + ids[:2])
    assert peak == 3
    assert sorted(source.fetches) == [(schema_id, None) for schema_id in ids]
    assert all(isinstance(store.get(schema_id), CompiledSchema) for schema_id in ids)
    assert len(source.fetches) == len(ids)


def test_prefetch_leaves_fresh_entries_and_a_lone_id_alone(clock):
    """Only ids not cached or expired are fetched; a single one is left to get, in the caller's thread."""
    source = FakeSource({THING: STRING_SCHEMA, OTHER: INTEGER_SCHEMA}, concurrency=4)
    store = SchemaStore(source, ttl=60, clock=clock)
    store.get(THING)
    store.prefetch([THING, OTHER])
    assert source.fetches == [(THING, None)]
    store.get(OTHER)
    store.prefetch([THING, OTHER])
    assert len(source.fetches) == 2


def test_prefetch_confirms_expired_schemas_with_one_catalog_request(clock):
    """After the TTL a batch of cached schemas costs one catalog request, not one per worker: the catalog answers
    slowly here, so workers that each asked it would be asking at the same time."""
    ids = [f"t/Thing_{n}/1-0.json" for n in range(8)]
    source = FakeSource(dict.fromkeys(ids, STRING_SCHEMA), lists_versions=True, concurrency=4)
    store = SchemaStore(source, ttl=60, clock=clock)
    store.prefetch(ids)
    clock.advance(60)
    source.before_catalog = lambda: time.sleep(0.05)
    store.prefetch(ids)
    assert (source.catalogs, len(source.fetches)) == (1, len(ids))
    assert all(isinstance(store.get(schema_id), CompiledSchema) for schema_id in ids)
    assert source.requests == 1 + len(ids)


def test_prefetch_asks_the_catalog_once_even_when_the_batch_starts_with_an_unknown_id(clock):
    """An unknown id is cached without a version, so refreshing it first asks no catalog: the one refreshed alone
    must be one the catalog can vouch for."""
    ids = [f"t/Thing_{n}/1-0.json" for n in range(8)]
    source = FakeSource(dict.fromkeys(ids, STRING_SCHEMA), lists_versions=True, concurrency=4)
    store = SchemaStore(source, ttl=60, clock=clock)
    store.prefetch(["t/Unknown/1-0.json", *ids])
    clock.advance(60)
    source.before_catalog = lambda: time.sleep(0.05)
    store.prefetch(["t/Unknown/1-0.json", *ids])
    assert source.catalogs == 1


def answers(store: SchemaStore, ids: list[str], prefetch: bool) -> list[Any]:
    """What get answers for each id, after a prefetch of them all or not; an outage ends the batch, as it ends a
    request."""
    try:
        if prefetch:
            store.prefetch(ids)
        return [(type(schema).__name__, getattr(schema, "reason", None)) for schema in map(store.get, ids)]
    except SchemaStoreUnavailableError as e:
        return [str(e)]


@pytest.mark.parametrize("cached", [False, True], ids=["cold", "expired"])
@pytest.mark.parametrize("down", [False, True], ids=["up", "down"])
@pytest.mark.parametrize("changed", [False, True], ids=["unchanged", "changed"])
@pytest.mark.parametrize("lists_versions", [False, True], ids=["names-only-catalog", "catalog-with-versions"])
def test_prefetch_changes_when_schemas_are_fetched_never_what_the_store_answers(cached, down, changed, lists_versions):
    """The same batch (a good schema twice, another, a broken one, an unknown id) through two stores, one left to
    get and one prefetching first: the same answers, the same outage, the same stale copies served while the source
    is down, and the same state once it is back. The same fetches too, with the same known versions, and the same
    catalog requests (one per TTL, not one per worker), except in an outage with nothing cached: there get stops at
    the first id, while prefetch has asked for every one at once."""
    from conftest import FakeClock

    batch = [THING, OTHER, BROKEN, UNKNOWN, THING]
    runs = []
    for prefetch in (False, True):
        clock = FakeClock()
        source = FakeSource({THING: STRING_SCHEMA, OTHER: STRING_SCHEMA, BROKEN: b"{"}, lists_versions, concurrency=4)
        store = SchemaStore(source, ttl=60, clock=clock)
        if cached:
            answers(store, batch, prefetch=False)
            clock.advance(60)
        if changed:
            source.schemas[OTHER] = INTEGER_SCHEMA
        source.down = down
        during = answers(store, batch, prefetch)
        source.down = False
        clock.advance(STALE_RETRY_SECONDS)
        after = answers(store, batch, prefetch)
        runs.append((during, after, accepts(store.get(OTHER), 1), source.catalogs, sorted(source.fetches, key=repr)))
    (during, after, integer, catalogs, fetches), prefetched = runs
    assert prefetched[:4] == (during, after, integer, catalogs)
    outage_tries = [] if cached or not down else [(schema_id, None) for schema_id in (OTHER, BROKEN, UNKNOWN)]
    assert prefetched[4] == sorted(fetches + outage_tries, key=repr)


def test_prefetch_raises_the_outage_of_the_first_id_that_failed(clock):
    """With nothing cached and the source down, prefetch fails as the first get would, after trying them all."""
    source = FakeSource({THING: STRING_SCHEMA, OTHER: STRING_SCHEMA}, concurrency=2)
    source.down = True
    store = SchemaStore(source, ttl=60, clock=clock)
    with pytest.raises(SchemaStoreUnavailableError, match="the fake source is down"):
        store.prefetch([THING, OTHER])
    assert sorted(source.fetches) == [(OTHER, None), (THING, None)]


# -- S3Source (moto server) -------------------------------------------------------------------------------

BUCKET = "registry-schemas"


@pytest.fixture
def s3(moto_url):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client


def s3_source(prefix: str = "schemas/", bucket: str = BUCKET) -> S3Source:
    endpoint = S3Endpoint("us-east-1", os.environ["AWS_ENDPOINT_URL_S3"])
    return S3Source(S3Location(bucket, "us-east-1", prefix), S3Client(endpoint, Credentials("testing", "testing")))


def test_s3_source_returns_the_body_and_its_etag(s3):
    """A fetch returns the object's bytes and its ETag as the version."""
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{THING}", Body=STRING_SCHEMA)
    fetched = s3_source().fetch(THING, None)
    assert isinstance(fetched, Fetched)
    assert fetched.body == STRING_SCHEMA
    assert fetched.version == s3.head_object(Bucket=BUCKET, Key=f"schemas/{THING}")["ETag"]


def test_s3_source_conditional_fetch(s3):
    """With the ETag it already has the answer is NOT_MODIFIED; after an upload it is the new body."""
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{THING}", Body=STRING_SCHEMA)
    source = s3_source()
    first = source.fetch(THING, None)
    assert source.fetch(THING, first.version) is NOT_MODIFIED
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{THING}", Body=INTEGER_SCHEMA)
    second = source.fetch(THING, first.version)
    assert isinstance(second, Fetched) and second.body == INTEGER_SCHEMA


def test_s3_source_has_no_schema_for_a_missing_key(s3):
    """A key that does not exist is 'no such schema', not an outage."""
    assert s3_source().fetch(THING, None) is None


def test_s3_source_missing_bucket_is_an_outage(s3):
    """A bucket that does not exist is a misconfiguration the store cannot answer through."""
    with pytest.raises(SchemaStoreUnavailableError, match="no-such-bucket"):
        s3_source(bucket="no-such-bucket").fetch(THING, None)


@pytest.mark.parametrize("fault", sorted(S3_FAULTS))
def test_s3_source_errors_are_outages(fault):
    """Denied, throttled, failing or unreachable S3 raises SchemaStoreUnavailableError naming the object."""
    s3 = FakeS3()
    s3.fail(fault)
    source = S3Source(S3Location(BUCKET, "us-east-1", "schemas/"), s3)
    with pytest.raises(SchemaStoreUnavailableError, match=f"s3://{BUCKET}/schemas/{THING}"):
        source.fetch(THING, None)


@pytest.mark.parametrize("prefix", ["schemas/", "", "team/tracking-plan/"])
def test_s3_source_reads_under_its_prefix(s3, prefix):
    """SCHEMA_PREFIX is prepended to the id, and only that key is read."""
    for other in {"schemas/", "", "team/tracking-plan/"}:
        s3.put_object(Bucket=BUCKET, Key=f"{other}{THING}", Body=body({"title": other}))
    assert json.loads(s3_source(prefix).fetch(THING, None).body) == {"title": prefix}


def test_store_over_s3_recompiles_only_after_an_upload(s3, clock):
    """End to end through moto: an unchanged object is a 304 and the same compiled schema; a new upload recompiles."""
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{THING}", Body=STRING_SCHEMA)
    store = SchemaStore(s3_source(), ttl=60, clock=clock)
    first = store.get(THING)
    clock.advance(60)
    assert store.get(THING) is first
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{THING}", Body=INTEGER_SCHEMA)
    clock.advance(60)
    second = store.get(THING)
    assert second is not first and accepts(second, 1) and not accepts(second, "x")


@pytest.mark.parametrize("name", sorted(LINEAR_FORMATS))
@settings(max_examples=2000, deadline=None, database=None)
@given(value=st.text(alphabet="ab.@ \t", max_size=12))
def test_linear_formats_accept_exactly_what_fastjsonschemas_regexes_accept(name, value):
    """The replacements for fastjsonschema's quadratic format regexes keep their answers (on one line: the regex's
    '..' look-ahead stops at a line break, a gap the replacement closes)."""
    import re

    from fastjsonschema.draft07 import CodeGeneratorDraft07

    assert LINEAR_FORMATS[name](value) == bool(re.match(CodeGeneratorDraft07.FORMAT_REGEXS[name], value))


# -- the index of names ----------------------------------------------------------------------------------------

def reflekt_body(schema_id: str, name: str) -> bytes:
    return body({"$schema": DRAFT_07, "$id": schema_id, "self": {"name": name}, "type": "object"})


SYNCED = ["shop/Order_Completed/1-0.json", "shop/Order_Completed/2-0.json", "shop/Signed_Up/1-0.json"]


def sync(s3: Any, ids: list[str] = SYNCED) -> None:
    """What `aws s3 sync schemas/ s3://bucket/schemas/` leaves: the files, no index."""
    for schema_id in ids:
        s3.put_object(Bucket=BUCKET, Key=f"schemas/{schema_id}", Body=reflekt_body(schema_id, "ignored"))


class Counted(NamedTuple):
    """The kinds of S3 request ("GET", "LIST") a store made, in order, read from its client's pool."""

    pool: CountingPool

    @property
    def requests(self) -> list[str]:
        return [kind for kind, _ in self.pool.requests]


def counted_store(s3: Any, clock: Any) -> tuple[SchemaStore, Counted]:
    pool = CountingPool()
    client = S3Client(S3Endpoint("us-east-1", os.environ["AWS_ENDPOINT_URL_S3"]), Credentials("testing", "testing"), pool=pool)
    return SchemaStore(S3Source(S3Location(BUCKET, "us-east-1", "schemas/"), client), ttl=60, clock=clock), Counted(pool)


def test_a_synced_bucket_is_indexed_from_its_listing_in_two_requests_per_ttl(s3, clock):
    """No index object: names come from Reflekt's folder layout; one GET (404) and one LIST per refresh."""
    sync(s3)
    store, counting = counted_store(s3, clock)
    assert store.index().resolve("Order Completed", 2, ()).schema_id == "shop/Order_Completed/2-0.json"
    for _ in range(100):
        store.index()
    assert counting.requests == ["GET", "LIST"]
    clock.advance(60)
    store.index()
    assert counting.requests[2:] == ["GET", "LIST"]


def test_past_1000_schemas_a_listing_takes_a_request_per_1000(s3, clock):
    """The limit publish's index removes (README: Tracking plans)."""
    sync(s3, [f"shop/Event_{i}/1-0.json" for i in range(1001)])
    store, counting = counted_store(s3, clock)
    assert store.index().size == 1001
    assert counting.requests == ["GET", "LIST", "LIST"]


def put_index(s3: Any, entries: list[IndexEntry], prefix: str = "schemas/") -> None:
    s3.put_object(Bucket=BUCKET, Key=index_key(prefix), Body=index_document(entries, prefix))


def test_a_published_index_costs_one_conditional_get_per_ttl_whatever_the_number_of_schemas(s3, clock):
    put_index(s3, [IndexEntry(f"shop/Event_{i}/1-0.json", f"Event {i} ✓") for i in range(5000)])
    store, counting = counted_store(s3, clock)
    first = store.index()
    assert first.resolve("Event 4999 ✓", None, ()).schema_id == "shop/Event_4999/1-0.json"
    clock.advance(60)
    assert store.index() is first  # a 304: not parsed again
    assert counting.requests == ["GET", "GET"]
    put_index(s3, [IndexEntry("shop/Other/1-0.json", "Other")])
    clock.advance(60)
    assert store.index().resolve("Other", None, ()).schema_id == "shop/Other/1-0.json"


@pytest.mark.parametrize("content", [b"{", body({"format": 1, "prefix": "elsewhere/", "schemas": []})])
def test_an_unusable_index_falls_back_to_the_listing_and_says_why(s3, clock, registry_log, content):
    sync(s3)
    s3.put_object(Bucket=BUCKET, Key=index_key("schemas/"), Body=content)
    store, _ = counted_store(s3, clock)
    assert store.index().size == 3
    assert "schema index is unusable" in registry_log.text


def test_schema_bodies_are_not_fetched_to_index_them(s3, clock):
    sync(s3)
    store, counting = counted_store(s3, clock)
    store.index()
    assert "GET" not in counting.requests[1:]


def test_a_cached_index_is_served_while_s3_is_down(clock, registry_log):
    fake = FakeS3({f"schemas/{SYNCED[0]}": b"{}"})
    fake.objects[index_key("schemas/")] = index_document([IndexEntry(SYNCED[0], "Order Completed")], "schemas/")
    store = SchemaStore(S3Source(S3Location(BUCKET, None, "schemas/"), fake), ttl=60, clock=clock)
    first = store.index()
    fake.fail("503 SlowDown")
    clock.advance(60)
    assert store.index() is first
    assert "serving cached schema index while the store is unavailable" in registry_log.text
    empty = SchemaStore(S3Source(S3Location(BUCKET, None, "schemas/"), fake), ttl=60, clock=clock)
    fake.fail("read timeout")
    with pytest.raises(SchemaStoreUnavailableError):
        empty.index()


def test_a_folder_schema_nested_past_the_parsers_limit_is_indexed_by_its_path(tmp_path, clock):
    """json.loads raises RecursionError, not a ValueError, on such a file: the walk must not fail every event."""
    write(tmp_path, "shop/Deep_Event/1-0.json", "[" * 100_000)
    index = SchemaStore(DirectorySource(tmp_path), ttl=60, clock=clock).index()
    assert index.resolve("Deep Event", None, ()).schema_id == "shop/Deep_Event/1-0.json"


def test_a_folder_is_indexed_by_self_name_skipping_what_fetch_would_refuse(tmp_path, clock):
    root = tmp_path / "schemas"
    write(root, "shop/Order_Completed/1-0.json", reflekt_body("shop/Order_Completed/1-0.json", "Order Completed ✓"))
    write(root, "shop/Broken/1-0.json", "{")
    write(root, ".reflekt/meta/1-0.json", "{}")
    outside = write(tmp_path / "elsewhere", "Secret/1-0.json", reflekt_body("Secret/1-0.json", "Secret"))
    (root / "shop" / "Secret").mkdir()
    (root / "shop" / "Secret" / "1-0.json").symlink_to(outside)
    index = SchemaStore(DirectorySource(root), ttl=60, clock=clock).index()
    assert index.resolve("Order Completed ✓", None, ()).schema_id == "shop/Order_Completed/1-0.json"
    assert index.resolve("Broken", None, ()).schema_id == "shop/Broken/1-0.json"  # fetch will say why it is unusable
    assert index.resolve("Secret", None, ()).keyword == "unplanned"
    assert index.size == 2


def test_a_folder_index_sees_new_schemas_after_the_ttl(tmp_path, clock):
    store = SchemaStore(DirectorySource(tmp_path), ttl=60, clock=clock)
    assert store.index().size == 0
    write(tmp_path, "shop/New/1-0.json", reflekt_body("shop/New/1-0.json", "New"))
    assert store.index().size == 0
    clock.advance(60)
    assert store.index().size == 1


def publish_index(s3: Any, ids: list[str] = SYNCED) -> None:
    """What publish leaves: the schemas, and the index of their names with the ETags S3 gave them."""
    etags = {schema_id: s3.put_object(Bucket=BUCKET, Key=f"schemas/{schema_id}",
                                      Body=reflekt_body(schema_id, "ignored"))["ETag"] for schema_id in ids}
    put_index(s3, [entry_from_path(schema_id)._replace(etag=etag) for schema_id, etag in etags.items()])


@pytest.mark.parametrize("publish, per_ttl", [(publish_index, ["GET"]), (sync, ["GET", "LIST"])],
                         ids=["publish's index", "a listing"])
def test_every_cached_schema_stays_current_for_the_catalogs_requests_alone(s3, clock, publish, per_ttl):
    """However many schemas are in use, a TTL costs the catalog's requests: the index's conditional GET (a 304), or a
    GET (404) and a LIST; their ETags confirm every cached schema."""
    ids = [f"shop/Event_{i}/1-0.json" for i in range(30)]
    publish(s3, ids)
    store, counting = counted_store(s3, clock)
    compiled = [store.get(schema_id) for schema_id in ids]
    assert counting.requests == ["GET"] * 30
    for window in range(2):
        clock.advance(60)
        assert [store.get(schema_id) for schema_id in ids] == compiled
        assert counting.requests[30 + window * len(per_ttl):] == per_ttl
    catalog_gets = [status for kind, status in counting.pool.requests[30:] if kind == "GET"]
    assert catalog_gets == ([200, 304] if publish is publish_index else [404, 404])  # an unchanged index is not re-read


def test_a_schema_uploaded_again_is_seen_through_the_listing_and_fetched_alone(s3, clock):
    sync(s3)
    store, counting = counted_store(s3, clock)
    first = [store.get(schema_id) for schema_id in SYNCED]
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{SYNCED[1]}", Body=body({"$schema": DRAFT_07, "type": "integer"}))
    clock.advance(60)
    now = [store.get(schema_id) for schema_id in SYNCED]
    assert (now[0], now[2]) == (first[0], first[2]) and accepts(now[1], 1)
    assert counting.requests[3:] == ["GET", "LIST", "GET"]


def test_index_entries_with_ids_fetch_would_refuse_are_left_out(s3, clock):
    put_index(s3, [IndexEntry("shop/Good/1-0.json", "Good"), IndexEntry("../outside/Bad/1-0.json", "Bad"),
                   IndexEntry("shop/Spaced Out/1-0.json", "Spaced Out")])
    store, _ = counted_store(s3, clock)
    assert store.index().size == 1
    assert store.index().resolve("Bad", None, ()).keyword == "unplanned"
