"""CloudWatch metrics with no client library: Embedded Metric Format (EMF) documents printed to stdout.

The Lambda runtime ships stdout to CloudWatch Logs, which turns each EMF document into metric data points.
EMF gives each dimension one value per document, so counts per schema take one document per schema_id in the
request: a request whose events all name one schema (every single-call request) writes exactly one line.
The first document also carries the forwarding latency, so each request contributes exactly one latency sample.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

from .validator import Verdict

NAMESPACE = "ReflektRegistry"
# Two registries in one account (staging, production) must not add up into one metric.
FUNCTION_NAME_DIMENSION = "FunctionName"
# Each distinct value is a custom metric: only ids of schemas that exist are used as values.
SCHEMA_ID_DIMENSION = "SchemaId"
# A dimension value must be a string; events that name no schema (alias, identify without traits, or a missing
# or malformed schema_id) are counted under this one. A schema id cannot contain parentheses, so it never clashes.
NO_SCHEMA_ID = "(none)"
# Where the inspection API and check-events list track events whose name no schema in the plans has (the metrics
# count them as UnplannedEvents under NO_SCHEMA_ID instead).
UNPLANNED_SCHEMA_ID = "(unplanned)"
# Ids that name no usable schema share one value: anyone with a write key could otherwise mint custom metrics,
# which CloudWatch bills one by one.
UNKNOWN_SCHEMA_ID = "(unknown)"
# Events by the source they went to (an event whose violations the controls allow goes to the valid one).
VALID_EVENTS = "ValidEvents"
INVALID_EVENTS = "InvalidEvents"
# Track events whose name no schema in the plans has, blocked or allowed: the plan's gaps.
UNPLANNED_EVENTS = "UnplannedEvents"
FORWARD_LATENCY = "ForwardLatency"
SPOOLED_EVENTS = "SpooledEvents"
REPLAYED_EVENTS = "ReplayedEvents"
REJECTED_EVENTS = "RejectedEvents"
SPOOL_AGE = "SpoolAge"


class Metrics(Protocol):
    def forwarding(self, verdicts: Sequence[Verdict]) -> AbstractContextManager[None]:
        """Wraps the delivery of the events these verdicts judged."""

    def spooled(self, events: int) -> None:
        """Segment did not take `events` events; they were spooled for the replay."""

    def drained(self, replayed: int, rejected: int, oldest_age: float) -> None:
        """A drain ran: events Segment took, events it refused, and the age in seconds of the oldest left."""


class NoMetrics:
    """The local server's choice: there is no CloudWatch, and the inspection API counts its events instead."""

    def forwarding(self, verdicts: Sequence[Verdict]) -> AbstractContextManager[None]:
        return nullcontext()

    def spooled(self, events: int) -> None:
        pass

    def drained(self, replayed: int, rejected: int, oldest_age: float) -> None:
        pass


NO_METRICS = NoMetrics()


class EmfMetrics:
    """Times each delivery and, when it succeeds, prints its counts and latency as EMF."""

    def __init__(self, function_name: str, clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter):
        self.function_name = function_name
        self.clock = clock
        self.timer = timer

    @contextmanager
    def forwarding(self, verdicts: Sequence[Verdict]) -> Iterator[None]:
        # Nothing is printed when delivery fails: the SDK retries, and its events would be counted twice.
        started = self.timer()
        yield
        latency_ms = (self.timer() - started) * 1e3
        for document in documents(self.function_name, verdicts, latency_ms, int(self.clock() * 1e3)):
            _print(document)

    def spooled(self, events: int) -> None:
        _print(function_document(self.function_name, int(self.clock() * 1e3), {SPOOLED_EVENTS: (events, "Count")}))

    def drained(self, replayed: int, rejected: int, oldest_age: float) -> None:
        # Written by every drain, an empty spool included (age 0): silence means the schedule stopped.
        _print(function_document(self.function_name, int(self.clock() * 1e3), {
            REPLAYED_EVENTS: (replayed, "Count"), REJECTED_EVENTS: (rejected, "Count"), SPOOL_AGE: (round(oldest_age, 3), "Seconds")}))


def _print(document: dict[str, Any]) -> None:
    print(json.dumps(document, separators=(",", ":")), flush=True)


def function_document(function_name: str, timestamp_ms: int, values: dict[str, tuple[float, str]]) -> dict[str, Any]:
    """One EMF document of per-function metrics: name -> (value, unit)."""
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[FUNCTION_NAME_DIMENSION]],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
            }],
        },
        FUNCTION_NAME_DIMENSION: function_name,
        **{name: value for name, (value, _) in values.items()},
    }


def documents(function_name: str, verdicts: Sequence[Verdict], latency_ms: float, timestamp_ms: int) -> list[dict[str, Any]]:
    """The EMF documents for one delivery: one per schema id, the first also carrying the latency."""
    valid: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    unplanned: Counter[str] = Counter()
    for verdict in verdicts:
        (invalid if verdict.blocked else valid)[_dimension(verdict)] += 1
        unplanned[_dimension(verdict)] += verdict.unplanned
    out = [_counts(function_name, schema_id, valid[schema_id], invalid[schema_id], unplanned[schema_id], timestamp_ms)
           for schema_id in sorted(valid | invalid)]
    if out:
        out[0]["_aws"]["CloudWatchMetrics"].append({
            "Namespace": NAMESPACE,
            "Dimensions": [[FUNCTION_NAME_DIMENSION]],
            "Metrics": [{"Name": FORWARD_LATENCY, "Unit": "Milliseconds"}],
        })
        out[0][FORWARD_LATENCY] = round(latency_ms, 2)
    return out


def _counts(function_name: str, schema_id: str, valid: int, invalid: int, unplanned: int, timestamp_ms: int) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                # The second set rolls every schema up into one series per function, for alarms on the total.
                "Dimensions": [[FUNCTION_NAME_DIMENSION, SCHEMA_ID_DIMENSION], [FUNCTION_NAME_DIMENSION]],
                "Metrics": [{"Name": VALID_EVENTS, "Unit": "Count"}, {"Name": INVALID_EVENTS, "Unit": "Count"},
                            {"Name": UNPLANNED_EVENTS, "Unit": "Count"}],
            }],
        },
        FUNCTION_NAME_DIMENSION: function_name,
        SCHEMA_ID_DIMENSION: schema_id,
        VALID_EVENTS: valid,
        INVALID_EVENTS: invalid,
        UNPLANNED_EVENTS: unplanned,
    }


def _dimension(verdict: Verdict) -> str:
    if verdict.schema_id is None:
        return NO_SCHEMA_ID
    return verdict.schema_id if verdict.schema_known else UNKNOWN_SCHEMA_ID


def listed_under(schema_id: str | None, unplanned: bool) -> str:
    """The key an event is listed under by the inspection API and check-events: its schema id, or why it has none."""
    return schema_id or (UNPLANNED_SCHEMA_ID if unplanned else NO_SCHEMA_ID)
