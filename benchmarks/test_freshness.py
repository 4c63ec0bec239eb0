"""Freshness cost: the S3 requests one warm container makes per SCHEMA_CACHE_TTL_SECONDS, at 10, 100 and 1,000 schemas.

A warm container keeps every schema it compiled; once the TTL is over, the next event naming a schema makes the
store ask S3 whether it is still current. Counted here is the worst case, every schema in use in every TTL window:
the traffic names each one once per window. Requests are counted, not timed, at the S3 client's connection pool
(one per HTTP request, whatever S3 answered), against moto running as a server, with the store's clock moved by hand.

The store answers that question for every cached schema at once from its catalog, which carries each schema's
ETag: publish's `registry/<prefix>index.json` (one conditional GET), or for a bucket filled by `aws s3 sync`, a listing of the
prefix (a GET that finds no index, and a LIST per 1,000 schemas). Counted for events naming their schema by
`schema_id` and for events judged by name (issue 9), with each kind of catalog, and, for comparison, with an index
written before indexes carried ETags, where each schema in use costs a conditional GET of its own. To count another
way, add it to WAYS: what the bucket holds besides the schemas, and a factory that gets the S3 client, the schemas'
location and the clock and returns something whose `get(schema_id)` serves a schema as an event would need it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import workload
from helpers import EXAMPLE_SCHEMAS, TEST_EVENT
from reflekt_registry.config import DEFAULT_SCHEMA_CACHE_TTL_SECONDS, Credentials, S3Endpoint, S3Location
from reflekt_registry.plans import entry_from_path, index_document, index_key
from reflekt_registry.s3 import S3Client
from reflekt_registry.schemas import MISSING_SCHEMA_TTL_SECONDS, CompiledSchema, S3Source, SchemaStore
from reflekt_registry.tools.publish import write_index
from report import FRESHNESS_SCHEMA_COUNTS, Freshness, Results
from s3_support import CountingPool
from services import BUCKET, REGION, MotoService

QUICK_SCHEMA_COUNTS = (10,)
TTL = DEFAULT_SCHEMA_CACHE_TTL_SECONDS
# A store gets the S3 client, where the schemas are, and the clock its TTLs run on.
StoreFactory = Callable[[S3Client, S3Location, Callable[[], float]], Any]


class ByName:
    """What judging an event by name costs the store: the index of names (kept fresh), then the schema it found."""

    def __init__(self, store: SchemaStore):
        self.store = store

    def get(self, schema_id: str) -> Any:
        self.store.index()
        return self.store.get(schema_id)


def publish_index(s3: Any, location: S3Location, schema_ids: list[str]) -> None:
    """The index publish writes for the bucket's schemas: names, and the ETags the listing shows."""
    write_index([], location.bucket, location.prefix, s3)


def index_without_etags(s3: Any, location: S3Location, schema_ids: list[str]) -> None:
    """An index as publish wrote it before indexes carried ETags: names alone."""
    entries = [entry for entry in map(entry_from_path, schema_ids) if entry]
    s3.put_object(Bucket=location.bucket, Key=index_key(location.prefix), Body=index_document(entries, location.prefix))


def no_index(s3: Any, location: S3Location, schema_ids: list[str]) -> None:
    s3.delete_object(Bucket=location.bucket, Key=index_key(location.prefix))


class Way(NamedTuple):
    prepare: Callable[[Any, S3Location, list[str]], None]  # (a boto3 client, where, the schema ids)
    open: StoreFactory


def _store(client: S3Client, location: S3Location, clock: Callable[[], float]) -> SchemaStore:
    return SchemaStore(S3Source(location, client), TTL, clock)


def _by_name(client: S3Client, location: S3Location, clock: Callable[[], float]) -> ByName:
    return ByName(_store(client, location, clock))


WAYS: dict[str, Way] = {
    "by schema_id, publish's index: its conditional GET": Way(publish_index, _store),
    "by schema_id, no index (aws s3 sync): a GET (404) and a LIST per 1,000": Way(no_index, _store),
    "by name, publish's index: its conditional GET": Way(publish_index, _by_name),
    "by name, no index (aws s3 sync): a GET (404) and a LIST per 1,000": Way(no_index, _by_name),
    "by name, an index without ETags (older publish): + a conditional GET per schema": Way(index_without_etags, _by_name),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def schema_documents(count: int) -> dict[str, bytes]:
    """`count` distinct schemas (the example Test_Event schema under new ids)."""
    template = json.loads((EXAMPLE_SCHEMAS / TEST_EVENT).read_text())
    return {f"bench/Event_{index}/1-0.json": json.dumps({**template, "$id": f"bench/Event_{index}/1-0.json"}).encode()
            for index in range(count)}


def test_s3_requests_per_ttl(s3: MotoService, results: Results, quick: bool) -> None:
    uploader = s3.client()
    for count in QUICK_SCHEMA_COUNTS if quick else FRESHNESS_SCHEMA_COUNTS:
        location = S3Location(BUCKET, REGION, f"freshness/{count}/")
        documents = schema_documents(count)
        for schema_id, body in documents.items():
            uploader.put_object(Bucket=BUCKET, Key=location.prefix + schema_id, Body=body)
        for name, way in WAYS.items():
            way.prepare(uploader, location, list(documents))
            results.freshness[name, count] = count_requests(way.open, s3.url, location, list(documents))


def count_requests(factory: StoreFactory, endpoint_url: str, location: S3Location, schema_ids: list[str]) -> Freshness:
    pool, clock = CountingPool(), Clock()
    client = S3Client(S3Endpoint(REGION, endpoint_url), Credentials("testing", "testing"), pool=pool)
    store = factory(client, location, clock)

    def use_every_schema() -> Counter[tuple[str, int]]:
        assert all(isinstance(store.get(schema_id), CompiledSchema) for schema_id in schema_ids)
        counted = Counter(pool.requests)
        pool.requests.clear()
        return counted

    first = use_every_schema()  # a cold container meets each schema
    within = use_every_schema()  # the same TTL window: all cached
    windows = []
    for _ in range(3):  # the next windows: every schema confirmed current (the first reads the catalog whole)
        clock.now += TTL
        windows.append(use_every_schema())
    assert sum(within.values()) == 0, within
    assert sum(windows[0].values()) == sum(windows[1].values()) and windows[1] == windows[2], windows  # steady
    return Freshness(sum(first.values()), sum(windows[1].values()), dict(windows[1]))


def test_an_unknown_id_costs_a_request_per_missing_ttl(s3: MotoService) -> None:
    """Events naming an id no schema has are re-checked every MISSING_SCHEMA_TTL_SECONDS, not on each event."""
    pool, clock = CountingPool(), Clock()
    client = S3Client(S3Endpoint(REGION, s3.url), Credentials("testing", "testing"), pool=pool)
    store = SchemaStore(S3Source(S3Location(BUCKET, REGION, "schemas/"), client), TTL, clock)
    windows = int(TTL // MISSING_SCHEMA_TTL_SECONDS)
    for _ in range(windows):
        for _ in range(workload.COLD_EVENTS):
            store.get("bench/No_Such_Event/1-0.json")
        clock.now += MISSING_SCHEMA_TTL_SECONDS
    assert Counter(pool.requests) == Counter({("GET", 404): windows})
