"""The work no implementation can skip, shared by the floor and the baselines: parse the body, judge each event,
serialise the two forward payloads.

Kept free of third-party imports: the cold benchmark's fresh interpreter for the original's stack imports it too,
and must pay only for what the original imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

SCHEMA_ID_FIELD = "schema_id"
# Where each call carries its schema_id and data (the registry's VALIDATED_FIELD; test_warm checks they agree).
PAYLOAD_FIELD = {"track": "properties", "page": "properties", "screen": "properties", "identify": "traits",
                 "group": "traits"}
# The original's annotation, added to the payload of an invalid event: the least an invalid event must carry.
ERRORS_FIELD = "validation_errors"

# (schema id, payload) -> the payload's violation messages; an empty list means valid.
Judge = Callable[[str, dict[str, Any]], list[str]]


def process(body: str | bytes, judge: Judge) -> tuple[bytes, bytes]:
    """The valid and the invalid /v1/batch bodies for the events of a Segment batch body."""
    valid, invalid = [], []
    for event in json.loads(body)["batch"]:
        payload = event[PAYLOAD_FIELD[event["type"]]]
        errors = judge(payload[SCHEMA_ID_FIELD], payload)
        if errors:
            payload[ERRORS_FIELD] = errors
            invalid.append(event)
        else:
            valid.append(event)
    return serialise(valid), serialise(invalid)


def serialise(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"batch": events}, separators=(",", ":")).encode()


def payloads(events: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(schema id, payload) of each event, for timing a validator alone."""
    return [(p[SCHEMA_ID_FIELD], p) for p in (event[PAYLOAD_FIELD[event["type"]]] for event in events)]


def judge_all(pairs: list[tuple[str, dict[str, Any]]], judge: Judge) -> int:
    """Judges every payload; returns how many were invalid."""
    return sum(1 for schema_id, payload in pairs if judge(schema_id, payload))
