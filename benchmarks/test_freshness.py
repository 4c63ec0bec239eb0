"""Freshness cost: the S3 requests one warm container makes per SCHEMA_CACHE_TTL_SECONDS, at 10, 100 and 1,000 schemas.

A warm container keeps every schema it compiled; once the TTL is over, the next event naming a schema makes the
store ask S3 again. Counted here is the worst case, every schema in use in every TTL window: the traffic names each
one once per window. Requests are counted, not timed, at the S3 client's connection pool (one per HTTP request,
whatever S3 answered), against moto running as a server, with the store's clock moved by hand.

Counted three ways: events naming their schema by `schema_id` (a conditional GET per schema in use), and events
judged by name (issue 9), which also keep the index of names fresh, from publish's `registry/index.json` or, for a
bucket filled by `aws s3 sync`, from a listing of the prefix. To count another way, add it to WAYS: what the
bucket holds besides the schemas, and a factory that gets the S3 client, the schemas' location and the clock and
returns something whose `get(schema_id)` serves a schema as an event would need it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import workload
from helpers import EXAMPLE_SCHEMAS, TEST_EVENT
from reflekt_registry.config import DEFAULT_SCHEMA_CACHE_TTL_SECONDS, Credentials, S3Endpoint, S3Location
from reflekt_registry.plans import INDEX_KEY, entry_from_path, index_document
from reflekt_registry.s3 import S3Client
from reflekt_registry.schemas import MISSING_SCHEMA_TTL_SECONDS, CompiledSchema, S3Source, SchemaStore
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
    entries = [entry for entry in map(entry_from_path, schema_ids) if entry]
    s3.put_object(Bucket=location.bucket, Key=INDEX_KEY, Body=index_document(entries, location.prefix))


def no_index(s3: Any, location: S3Location, schema_ids: list[str]) -> None:
    s3.delete_object(Bucket=location.bucket, Key=INDEX_KEY)


class Way(NamedTuple):
    prepare: Callable[[Any, S3Location, list[str]], None]  # (a boto3 client, where, the schema ids)
    open: StoreFactory


def _store(client: S3Client, location: S3Location, clock: Callable[[], float]) -> SchemaStore:
    return SchemaStore(S3Source(location, client), TTL, clock)


WAYS: dict[str, Way] = {
    "by schema_id: a conditional GET per schema": Way(no_index, _store),
    "by name, publish's index: + its conditional GET": Way(publish_index, lambda *a: ByName(_store(*a))),
    "by name, no index (aws s3 sync): + a GET (404) and a LIST per 1,000": Way(no_index, lambda *a: ByName(_store(*a))),
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
    clock.now += TTL
    per_ttl = use_every_schema()  # the next window: each schema re-checked once
    clock.now += TTL
    again = use_every_schema()
    assert sum(within.values()) == 0, within
    assert per_ttl == again, (per_ttl, again)  # steady state
    return Freshness(sum(first.values()), sum(per_ttl.values()), dict(per_ttl))


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
