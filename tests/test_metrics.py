"""CloudWatch Embedded Metric Format: what the Lambda prints per request, checked against the EMF specification."""

from __future__ import annotations

import json
import time
from numbers import Real

import boto3
import pytest

from helpers import TEST_EVENT, api_event, make_registry, response_json, track, unusable_folder
from reflekt_registry import handler
from reflekt_registry.handler import Registry
from reflekt_registry.metrics import EmfMetrics, documents
from reflekt_registry.validator import Verdict, Violation
from s3_support import create_bucket_with_schemas, lambda_env

IDENTIFY = "jaffle_shop/Identify/1-0.json"
# From the EMF specification (CloudWatch_Embedded_Metric_Format_Specification) and MetricDatum's unit list.
EMF_UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
})
MAX_DIMENSIONS_PER_SET = 9  # the spec's first limit; later raised to 30, so 9 holds everywhere
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100
MAX_DOCUMENT_BYTES = 256 * 1024


def assert_valid_emf(line: str) -> dict:
    """Every MUST of the EMF document structure; returns the parsed document."""
    assert len(line.encode()) <= MAX_DOCUMENT_BYTES and "\n" not in line
    document = json.loads(line)
    metadata = document["_aws"]
    assert isinstance(metadata["Timestamp"], int) and metadata["Timestamp"] > 10**12, "milliseconds since the epoch"
    assert isinstance(metadata["CloudWatchMetrics"], list) and metadata["CloudWatchMetrics"]
    for directive in metadata["CloudWatchMetrics"]:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        assert directive["Dimensions"], "at least one DimensionSet"
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= MAX_DIMENSIONS_PER_SET
            for key in dimension_set:
                assert isinstance(document.get(key), str), f"dimension {key} must be a string member of the root"
        assert 1 <= len(directive["Metrics"]) <= MAX_METRICS_PER_DIRECTIVE
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"} and metric.get("Unit", "None") in EMF_UNITS
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= MAX_VALUES_PER_METRIC
            assert all(isinstance(v, Real) and not isinstance(v, bool) for v in values), f"{metric['Name']} must be numeric"
    return document


def emf_lines(captured: str) -> list[dict]:
    """The EMF documents among the lines a request printed (log lines are JSON too, but carry no _aws)."""
    return [assert_valid_emf(line) for line in captured.splitlines() if line.startswith("{") and "_aws" in json.loads(line)]


def metrics_registry(segment_url: str, timer=time.perf_counter, **env: str) -> Registry:
    """A registry with EMF switched on, as lambda_handler builds it, but reading the example schemas from a folder."""
    registry = make_registry(segment_url, **env)
    registry.metrics = registry.spool.metrics = EmfMetrics("registry-test", timer=timer)
    return registry


def order(valid: bool = True) -> dict:
    return {"type": "track", "event": "Order Completed", "userId": "u1",
            "properties": {"schema_id": "jaffle_shop/Order_Completed/1-0.json", "order_id": "o1", "revenue": 1 if valid else -1,
                           "currency": "EUR", "products": [{"product_id": "p1", "price": 1, "quantity": 1}]}}


def test_a_request_whose_events_share_a_schema_prints_one_line(segment, capsys):
    """The common case: one EMF line with both counts for the schema, and the forwarding latency."""
    registry = metrics_registry(segment.url)
    registry.handle(api_event({"batch": [track(test_property="x"), track(test_property="y"), track(test_property=3)]}))
    [document] = emf_lines(capsys.readouterr().out)
    assert {name: document[name] for name in ("FunctionName", "SchemaId", "ValidEvents", "InvalidEvents")} == {
        "FunctionName": "registry-test", "SchemaId": TEST_EVENT, "ValidEvents": 2, "InvalidEvents": 1}
    assert document["ForwardLatency"] >= 0
    assert [d["Dimensions"] for d in document["_aws"]["CloudWatchMetrics"]] == [
        [["FunctionName", "SchemaId"], ["FunctionName"]], [["FunctionName"]]]


def test_a_request_with_several_schemas_prints_a_line_per_schema_and_one_latency(segment, capsys):
    """EMF allows one SchemaId per document: a line per schema, the latency only on the first so it is sampled once."""
    registry = metrics_registry(segment.url)
    identify = {"type": "identify", "userId": "u1", "traits": {"schema_id": IDENTIFY, "email": "a@b.co"}}
    alias = {"type": "alias", "userId": "u1", "previousId": "anon"}
    unplanned = {"type": "track", "event": "No Such Event", "userId": "u1", "properties": {}}
    registry.handle(api_event({"batch": [track(test_property=3), identify, order(), order(valid=False), alias, unplanned]}))
    lines = emf_lines(capsys.readouterr().out)
    assert [(d["SchemaId"], d["ValidEvents"], d["InvalidEvents"]) for d in lines] == [
        ("(none)", 1, 1), (IDENTIFY, 1, 0), ("jaffle_shop/Order_Completed/1-0.json", 1, 1), (TEST_EVENT, 0, 1)]
    assert ["ForwardLatency" in d for d in lines] == [True, False, False, False]


def test_ids_of_schemas_that_do_not_exist_share_one_dimension_value(segment, capsys):
    """A client cannot mint custom metrics (billed one by one) by inventing schema ids."""
    registry = metrics_registry(segment.url)
    registry.handle(api_event({"batch": [track(schema_id=f"made/Up_{i}/1-0.json") for i in range(5)]}))
    [document] = emf_lines(capsys.readouterr().out)
    assert (document["SchemaId"], document["InvalidEvents"]) == ("(unknown)", 5)


def test_the_latency_is_the_time_spent_forwarding(segment, capsys):
    """Measured around the delivery to Segment alone, in milliseconds."""
    readings = iter([100.0, 100.25])
    registry = metrics_registry(segment.url, timer=lambda: next(readings))
    registry.handle(api_event({"batch": [track(test_property="x")]}))
    [document] = emf_lines(capsys.readouterr().out)
    assert document["ForwardLatency"] == 250.0


def test_a_failed_delivery_prints_nothing(segment, capsys, tmp_path):
    """Segment and the spool both failing: the SDK retries after a 503, and counting now would count its events twice."""
    segment.fail(times=1, status=400)
    registry = metrics_registry(segment.url, SPOOL_DIR=unusable_folder(tmp_path))
    response = registry.handle(api_event({"batch": [track(test_property="x")]}))
    assert response["statusCode"] == 503
    assert emf_lines(capsys.readouterr().out) == []


def test_a_spooled_delivery_counts_its_events_once_and_as_spooled(segment, capsys):
    """Accepted with a 200, so judged and counted now; SpooledEvents says how many wait for the replay."""
    segment.fail(times=1, status=400)
    response = metrics_registry(segment.url).handle(api_event({"batch": [track(test_property="x"), track(test_property=1)]}))
    assert response["statusCode"] == 200
    spooled, counts = emf_lines(capsys.readouterr().out)  # the spool writes as the delivery fails, before it ends
    assert (spooled["SpooledEvents"], spooled["_aws"]["CloudWatchMetrics"][0]["Dimensions"]) == (1, [["FunctionName"]])
    assert (counts["ValidEvents"], counts["InvalidEvents"]) == (1, 1)


def test_a_drain_reports_what_it_replayed_and_the_spool_age(segment, capsys, tmp_path):
    """Every drain prints one line, an empty spool included: replayed and rejected counts, and the age of what is left."""
    registry = metrics_registry(segment.url, SPOOL_DIR=str(tmp_path))
    segment.fail(times=1, status=400)
    registry.handle(api_event({"batch": [track(test_property="x"), track(test_property="y")]}))
    capsys.readouterr()
    registry.drain(seconds=30)
    registry.drain(seconds=30)
    first, second = emf_lines(capsys.readouterr().out)
    assert [first[name] for name in ("ReplayedEvents", "RejectedEvents", "SpoolAge")] == [2, 0, 0]
    assert [second[name] for name in ("ReplayedEvents", "RejectedEvents", "SpoolAge")] == [0, 0, 0]
    assert {m["Name"]: m["Unit"] for m in first["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        "ReplayedEvents": "Count", "RejectedEvents": "Count", "SpoolAge": "Seconds"}


@pytest.mark.parametrize("event", [
    api_event({"batch": []}),
    api_event(None, method="GET", path="/v1/projects/client-key/settings"),
    api_event({"batch": [track(test_property="x")]}, write_key=None),
], ids=["empty-batch", "settings", "refused"])
def test_requests_that_forward_nothing_print_nothing(segment, capsys, event):
    """No events forwarded, no data points: a line of zeros would only dilute the latency."""
    metrics_registry(segment.url).handle(event)
    assert emf_lines(capsys.readouterr().out) == []


def test_the_local_server_prints_no_metrics(segment, capsys):
    """Only the Lambda reports to CloudWatch; locally the inspection API counts instead."""
    make_registry(segment.url).handle(api_event({"batch": [track(test_property="x")]}))
    assert emf_lines(capsys.readouterr().out) == []


def test_the_deployed_lambda_prints_emf_under_its_function_name(segment, monkeypatch, capsys, moto_url):
    """lambda_handler switches EMF on, with the FunctionName the Lambda runtime sets."""
    for name, value in {**lambda_env(segment.url), "AWS_LAMBDA_FUNCTION_NAME": "registry-prod"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "_registry", None)
    create_bucket_with_schemas(boto3.client("s3", region_name="us-east-1"))
    response = handler.lambda_handler(api_event({"batch": [track(test_property="x")]}), None)
    assert response_json(response) == {"success": True}
    [document] = emf_lines(capsys.readouterr().out)
    assert (document["FunctionName"], document["SchemaId"], document["ValidEvents"]) == ("registry-prod", TEST_EVENT, 1)


@pytest.mark.parametrize("verdicts", [
    [Verdict(TEST_EVENT)],
    [Verdict(None), Verdict(None, (Violation("$.properties.schema_id", "required", "missing"),))],
    [Verdict(f"vendor/Event_{n}/1-0.json") for n in range(50)],
], ids=["one", "no-schema", "fifty-schemas"])
def test_every_document_is_valid_emf(verdicts):
    """Whatever the mix of verdicts, each document meets the specification and the counts add up."""
    lines = [json.dumps(d) for d in documents("fn", verdicts, 12.345, 1_700_000_000_000)]
    parsed = [assert_valid_emf(line) for line in lines]
    assert sum(d["ValidEvents"] + d["InvalidEvents"] for d in parsed) == len(verdicts)
    assert parsed[0]["ForwardLatency"] == 12.35


def test_unplanned_events_are_counted_and_events_are_counted_by_the_source_they_went_to():
    """Blocked or allowed, unplanned events are the plan's gaps; an allowed violation counts as valid (its source)."""
    unplanned_blocked = Verdict(None, (Violation("$.event", "unplanned", "no schema named 'X'"),), unplanned=True)
    unplanned_allowed = Verdict(None, unplanned=True)
    allowed = Verdict(IDENTIFY, (Violation("$.traits.email", "format", "bad"),), allowed=True)
    lines = documents("registry-test", [unplanned_blocked, unplanned_allowed, allowed], 1.0, 1_700_000_000_000)
    assert [(d["SchemaId"], d["ValidEvents"], d["InvalidEvents"], d["UnplannedEvents"]) for d in lines] == [
        ("(none)", 1, 1, 2), (IDENTIFY, 1, 0, 0)]
    for line in lines:
        assert_valid_emf(json.dumps(line))
