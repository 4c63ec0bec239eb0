"""Freshness cost: the S3 requests one warm container makes per SCHEMA_CACHE_TTL_SECONDS, at 10, 100 and 1,000 schemas.

A warm container keeps every schema it compiled; once the TTL is over, the next event naming a schema makes the
store ask S3 again. Counted here is the worst case, every schema in use in every TTL window: the traffic names each
one once per window. Requests are counted, not timed, at the S3 client's connection pool (one per HTTP request,
whatever S3 answered), against moto running as a server, with the store's clock moved by hand.

To count another way of keeping schemas fresh (issue 9's schema index, say), add it to STORES: a factory that gets
the S3 client, the schemas' location and the clock, and returns a store whose `get(schema_id)` serves a schema.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import urllib3

import workload
from helpers import EXAMPLE_SCHEMAS, TEST_EVENT
from reflekt_registry.config import DEFAULT_SCHEMA_CACHE_TTL_SECONDS, Credentials, S3Endpoint, S3Location
from reflekt_registry.s3 import S3Client
from reflekt_registry.schemas import MISSING_SCHEMA_TTL_SECONDS, CompiledSchema, S3Source, SchemaStore
from report import FRESHNESS_SCHEMA_COUNTS, Freshness, Results
from services import BUCKET, REGION, MotoService

QUICK_SCHEMA_COUNTS = (10,)
TTL = DEFAULT_SCHEMA_CACHE_TTL_SECONDS
# Each freshness store gets: the S3 client, where the schemas are, and the clock its TTLs run on.
StoreFactory = Callable[[S3Client, S3Location, Callable[[], float]], Any]
STORES: dict[str, StoreFactory] = {
    "per-schema conditional GET (schemas.SchemaStore)":
        lambda client, location, clock: SchemaStore(S3Source(location, client), TTL, clock),
}


class CountingPool(urllib3.PoolManager):
    """A connection pool that counts the HTTP requests made through it, by kind (GET, LIST, PUT...) and answer."""

    def __init__(self) -> None:
        super().__init__(num_pools=2, maxsize=4, retries=False)
        self.requests: Counter[tuple[str, int]] = Counter()

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        response = super().urlopen(method, url, redirect=redirect, **kw)
        kind = "LIST" if "list-type=" in url else method  # a LIST is a GET on the bucket, priced higher
        self.requests[kind, response.status] += 1
        return response

    def take(self) -> Counter[tuple[str, int]]:
        counted, self.requests = self.requests, Counter()
        return counted


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
        for name, factory in STORES.items():
            results.freshness[name, count] = count_requests(factory, s3.url, location, list(documents))


def count_requests(factory: StoreFactory, endpoint_url: str, location: S3Location, schema_ids: list[str]) -> Freshness:
    pool, clock = CountingPool(), Clock()
    client = S3Client(S3Endpoint(REGION, endpoint_url), Credentials("testing", "testing"), pool=pool)
    store = factory(client, location, clock)

    def use_every_schema() -> Counter[tuple[str, int]]:
        assert all(isinstance(store.get(schema_id), CompiledSchema) for schema_id in schema_ids)
        return pool.take()

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
    assert pool.take() == Counter({("GET", 404): windows})
