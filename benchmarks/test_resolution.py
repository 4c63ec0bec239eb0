"""Warm cost of finding each event's schema by name and version in a tracking plan of 1,000 schemas, against
naming it by schema_id: the same events, the same schemas, the same handler with destinations that discard.

The two plans differ only as the two conventions do: the schema_id plan's schemas declare schema_id (the original
registry's convention) and its events carry it; the name plan's schemas, as `reflekt pull` writes them, do not,
and its events name their version in context.protocols.event_version half the time.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

import workload
from helpers import CLIENT_KEY, api_event, make_registry
from reflekt_registry.forwarder import Forwarder
from report import BY_NAME, BY_SCHEMA_ID, PLAN_BATCH, PLAN_EVENTS, PLAN_SCHEMAS, Results
from test_warm import Discard, many_rounds

PLAN = "bench/"
VERSIONS = ("1-0", "1-1")  # each event has two MINORs: a name lookup must pick the latest
USED_EVENTS = 100  # a batch cycles over this many of the plan's events
CACHE_TTL = "3600"


def event_name(number: int) -> str:
    return f"Item Event {number:04d}"


def schema_id(number: int, version: str) -> str:
    return f"{PLAN}{event_name(number).replace(' ', '_')}/{version}.json"


def write_plan(root: Path, declare_schema_id: bool) -> Path:
    for number in range(PLAN_EVENTS):
        for version in VERSIONS:
            properties: dict[str, Any] = {"item_id": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1},
                                          "price": {"type": "number"}}
            if declare_schema_id:
                properties["schema_id"] = {"type": "string", "const": schema_id(number, version)}
            document = {"$schema": "http://json-schema.org/draft-07/schema#", "$id": schema_id(number, version),
                        "self": {"name": event_name(number), "version": version}, "type": "object",
                        "properties": properties, "required": ["item_id", "quantity"]}
            path = root / schema_id(number, version)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document))
    return root


def request(by_name: bool) -> dict[str, Any]:
    """PLAN_BATCH track events over USED_EVENTS names, the workload's share of them invalid (a quantity of 0)."""
    rng = random.Random(workload.SEED)
    events = []
    for index in range(PLAN_BATCH):
        number = index * (PLAN_EVENTS // USED_EVENTS) % PLAN_EVENTS
        properties: dict[str, Any] = {"item_id": f"i-{rng.randrange(10**6)}", "price": round(rng.uniform(1, 50), 2),
                                      "quantity": 0 if workload.is_invalid(index) else rng.randint(1, 5)}
        context: dict[str, Any] = dict(workload.CONTEXT)
        if by_name and index % 2:
            context["protocols"] = {"event_version": 1}
        if not by_name:
            properties["schema_id"] = schema_id(number, VERSIONS[-1])
        events.append({"type": "track", "event": event_name(number), "messageId": f"m-{index}", "userId": "u1",
                       "context": context, "properties": properties})
    return api_event(workload.batch_body(events), write_key=CLIENT_KEY)


@many_rounds
@pytest.mark.parametrize("by_name", [False, True], ids=["by-schema-id", "by-name"])
def test_handler_over_a_1000_schema_plan(benchmark, by_name: bool, tmp_path: Path, results: Results) -> None:
    # A TTL longer than the run: neither schema bodies nor the index are re-read while timing (in Lambda that is one
    # conditional GET a minute; this folder source would walk 2,000 files).
    registry = make_registry(schema_dir=write_plan(tmp_path, declare_schema_id=not by_name), SCHEMA_CACHE_TTL_SECONDS=CACHE_TTL)
    valid, invalid = Discard(), Discard()
    registry.forwarder = Forwarder(valid, invalid)
    body = request(by_name)
    assert registry.handle(body)["statusCode"] == 200  # compiles the schemas used and builds the index: warm after
    assert registry.validator.store.index().size == PLAN_SCHEMAS

    benchmark.group = f"tracking plan of {PLAN_SCHEMAS:,} schemas, batch of {PLAN_BATCH}"
    assert benchmark(registry.handle, body)["statusCode"] == 200
    invocations = (valid.events + invalid.events) // PLAN_BATCH
    assert (valid.events, invalid.events) == tuple(count * invocations for count in workload.expected_split(PLAN_BATCH))
    results.record(BY_NAME if by_name else BY_SCHEMA_ID, benchmark, PLAN_BATCH)
