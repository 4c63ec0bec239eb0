"""Warm cost of finding each event's schema by name and version in a tracking plan of 1,000 schemas, against
naming it by schema_id: the same events, the same schemas, the same handler with destinations that discard.

The two plans differ only as the two conventions do: the schema_id plan's schemas declare schema_id (the original
registry's convention) and its events carry it; the name plan's schemas, as `reflekt pull` writes them, do not,
and its events name their version in context.protocols.event_version half the time.

The goal is a 10% difference, far below how much the load on this shared machine drifts between two
pytest-benchmark series run one after the other (medians of the same code came out 0.5x to 1.1x apart). So the two
take turns, ABBA, a block of requests each, as the cold benchmark's fresh processes do, and the ratio is that of
the medians of their blocks.
"""

from __future__ import annotations

import gc
import json
import random
import time
from pathlib import Path
from typing import Any

import workload
from helpers import CLIENT_KEY, api_event, make_registry
from reflekt_registry.handler import Registry
from report import BY_NAME, BY_SCHEMA_ID, PLAN_BATCH, PLAN_EVENTS, PLAN_SCHEMAS, Results
from test_warm import Discard, DiscardOutlets

PLAN = "bench/"
VERSIONS = ("1-0", "1-1")  # each event has two MINORs: a name lookup must pick the latest
# A batch names this many distinct events, spread over the plan, so each lookup and compiled schema serves one event
# as in an app's mixed traffic, rather than one hot schema serving the whole batch.
USED_EVENTS = 100
CACHE_TTL = "3600"  # longer than the run (see warm_registry)
# Turns of each side (odd, so the median is a measured block), each a block of requests long enough (~20-50 ms)
# that the clock's resolution and one scheduling hiccup do not decide it.
TURNS = 41
REQUESTS_PER_TURN = 20


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


def warm_registry(root: Path, by_name: bool) -> tuple[Registry, Discard, Discard, dict[str, Any]]:
    """A registry over its plan that has handled the request once: schemas compiled, the index built."""
    # A TTL longer than the run: neither schema bodies nor the index are re-read while timing (in Lambda that is one
    # conditional GET a minute; this folder source would walk 1,000 files).
    registry = make_registry(schema_dir=write_plan(root, declare_schema_id=not by_name), SCHEMA_CACHE_TTL_SECONDS=CACHE_TTL)
    valid, invalid = Discard(), Discard()
    registry.outlets = DiscardOutlets(valid, invalid)
    body = request(by_name)
    assert registry.handle(body)["statusCode"] == 200
    assert registry.validator.store.index().size == PLAN_SCHEMAS
    return registry, valid, invalid, body


def test_name_resolution_against_schema_id_over_a_1000_schema_plan(tmp_path: Path, results: Results, quick: bool) -> None:
    sides = {by_name: warm_registry(tmp_path / str(by_name), by_name) for by_name in (False, True)}
    seconds: dict[bool, list[float]] = {False: [], True: []}
    turns, requests = (1, 1) if quick else (TURNS, REQUESTS_PER_TURN)
    gc.collect()
    for turn in range(turns):
        for by_name in ((False, True) if turn % 2 == 0 else (True, False)):
            registry, _, _, body = sides[by_name]
            started = time.perf_counter()
            for _ in range(requests):
                registry.handle(body)
            seconds[by_name].append((time.perf_counter() - started) / requests)
    for registry, valid, invalid, _ in sides.values():
        handled = 1 + turns * requests
        assert (valid.events, invalid.events) == tuple(count * handled for count in workload.expected_split(PLAN_BATCH))
    results.record_samples(BY_SCHEMA_ID, seconds[False])
    results.record_samples(BY_NAME, seconds[True])
