"""The one event mix every benchmark uses: realistic Segment SDK events, ~400 B each, valid and invalid, over the
example Reflekt project's schemas.

Everything here is deterministic (a fixed seed and fixed positions for the invalid events), so every benchmark, in
this process or a fresh one, judges exactly the same events.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import CLIENT_KEY, EXAMPLE_SCHEMAS, api_event
from pipeline import PAYLOAD_FIELD, SCHEMA_ID_FIELD

# Fixed so that two runs, and the parent and a child process, build identical batches.
SEED = 20261126
# Two of every nine events break their schema (22%): a tracking plan in active use with a few stale or buggy call
# sites. Fixed positions (not a coin flip) make the split exact and the same in every process; a period of 9,
# coprime with the 5 and 7 schemas the events cycle over, spreads the mistakes over every schema.
INVALID_PERIOD = 9
INVALID_POSITIONS = frozenset({4, 8})
SENT_AT = "2026-11-26T18:00:02.000Z"
# Part of what analytics.js 1.84 puts in every event's context; with it the mean event is ~400 B, the size the
# issue asks for (browser events with a full userAgent and page context run larger, server-side ones smaller).
CONTEXT = {"library": {"name": "analytics.js", "version": "npm:next-1.84.3"}, "locale": "en-US"}

Payload = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One schema of the example project and how SDK traffic for it looks, right and wrong."""

    schema_id: str
    call: str  # the Segment call that carries it
    name: str  # the event (track) or page/screen name
    valid: Callable[[random.Random], Payload]
    # Realistic mistakes, used in turn. Each breaks the schema for every validator benchmarked, except Identify's
    # bad email, which only a format-checking validator catches (the original's Draft7Validator let it through).
    mistakes: tuple[Callable[[Payload], None], ...]


def _product(rng: random.Random) -> Payload:
    return {"product_id": f"sku-{rng.randrange(1000, 9999)}", "name": rng.choice(["Jaffle", "Toastie", "Cold brew"]),
            "price": round(rng.uniform(2, 40), 2), "quantity": rng.randint(1, 3)}


def _set(key: str, value: Any) -> Callable[[Payload], None]:
    return lambda payload: payload.__setitem__(key, value)


def _drop(key: str) -> Callable[[Payload], None]:
    return lambda payload: payload.pop(key, None)


def _first_product(key: str, value: Any) -> Callable[[Payload], None]:
    return lambda payload: payload["products"][0].__setitem__(key, value)


# The first COLD_SCHEMAS kinds are the ones the cold benchmark spreads its events over.
KINDS: tuple[Kind, ...] = (
    Kind("jaffle_shop/Page_Viewed/1-0.json", "page", "Menu",
         lambda rng: {"path": "/menu", "url": "https://jaffle.example.com/menu", "title": "Menu",
                      "referrer": "https://www.google.com/"},
         (_drop("path"), _set("utm_source", "newsletter"))),
    Kind("jaffle_shop/Order_Completed/1-0.json", "track", "Order Completed",
         lambda rng: {"order_id": f"o-{rng.randrange(10**6)}", "revenue": round(rng.uniform(5, 80), 2),
                      "currency": rng.choice(["USD", "EUR", "GBP"]), "coupon": None, "products": [_product(rng)]},
         (_set("currency", "usd"), _set("revenue", "12.50"), _first_product("quantity", 0))),
    Kind("jaffle_shop/Identify/1-0.json", "identify", "",
         lambda rng: {"email": f"user{rng.randrange(10**4)}@example.com", "first_name": "Ada",
                      "plan": rng.choice(["free", "pro", "enterprise"])},
         (_set("plan", "trial"), _set("email", "not-an-email"))),
    Kind("jaffle_shop/Cart_Viewed/1-0.json", "track", "Cart Viewed",
         lambda rng: {"cart_id": f"c-{rng.randrange(10**6)}", "session_id": f"s-{rng.randrange(10**6)}",
                      "products": [_product(rng)]},
         (_drop("session_id"), _first_product("price", -1))),
    Kind("jaffle_shop/Screen_Viewed/1-0.json", "screen", "Checkout",
         lambda rng: {"name": "Checkout", "variant": rng.choice(["a", "b"])},
         (_set("variant", 2), _set("duration_ms", 1200))),
    Kind("jaffle_shop/Group/1-0.json", "group", "",
         lambda rng: {"name": rng.choice(["Acme", "Globex", "Initech"]), "employees": rng.randint(5, 500)},
         (_set("employees", 0), _drop("name"))),
    Kind("segment/demo/Test_Event/1-0.json", "track", "Test Event",
         lambda rng: {"test_property": f"value-{rng.randrange(1000)}"},
         (_set("test_property", 42),)),
)
# The cold benchmark's first request: 20 events over 5 schemas, as the issue specifies.
COLD_EVENTS = 20
COLD_SCHEMAS = 5


def is_invalid(index: int) -> bool:
    return index % INVALID_PERIOD in INVALID_POSITIONS


def make_events(count: int, schemas: int = len(KINDS)) -> list[dict[str, Any]]:
    """`count` events cycling over the first `schemas` kinds; is_invalid(i) says which ones break their schema."""
    rng = random.Random(SEED)
    events = []
    for index in range(count):
        kind = KINDS[index % schemas]
        payload = {SCHEMA_ID_FIELD: kind.schema_id, **kind.valid(rng)}
        if is_invalid(index):
            kind.mistakes[(index // schemas) % len(kind.mistakes)](payload)
        events.append(_envelope(kind, payload, rng, index))
    return events


def _envelope(kind: Kind, payload: Payload, rng: random.Random, index: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind.call,
        "messageId": f"ajs-next-1795716073{index:03d}-{rng.getrandbits(64):016x}",
        "anonymousId": f"{rng.getrandbits(128):032x}",
        "userId": f"user-{rng.randrange(10**5)}",
        "timestamp": f"2026-11-26T18:00:01.{index % 1000:03d}Z",
        "context": CONTEXT,
        PAYLOAD_FIELD[kind.call]: payload,
    }
    if kind.call == "track":
        event["event"] = kind.name
    elif kind.call in ("page", "screen"):
        event["name"] = kind.name
    return event


def batch_body(events: list[dict[str, Any]]) -> str:
    """The body analytics.js posts to /v1/batch (compact JSON, as browsers send it)."""
    return json.dumps({"batch": events, "sentAt": SENT_AT}, separators=(",", ":"))


def request(count: int, schemas: int = len(KINDS)) -> dict[str, Any]:
    """The API Gateway HTTP API event for one /v1/batch request of `count` events, Basic auth with CLIENT_KEY."""
    return api_event(batch_body(make_events(count, schemas)), write_key=CLIENT_KEY)


def expected_split(count: int) -> tuple[int, int]:
    """(valid, invalid) events a correct registry forwards for make_events(count)."""
    invalid = sum(is_invalid(index) for index in range(count))
    return count - invalid, invalid


def schema_documents(schemas: int = len(KINDS), root: Path = EXAMPLE_SCHEMAS) -> dict[str, bytes]:
    """The schema files the first `schemas` kinds name, by $id, as they sit in S3 or the schemas/ folder."""
    return {kind.schema_id: (root / kind.schema_id).read_bytes() for kind in KINDS[:schemas]}


def mean_event_bytes(events: list[dict[str, Any]]) -> float:
    return sum(len(json.dumps(event, separators=(",", ":"))) for event in events) / len(events)
