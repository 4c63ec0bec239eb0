"""The Lambda as deployed: lambda_handler, settings from the environment, schemas from S3 (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from helpers import (CLIENT_KEY, INVALID_KEY, IOS_INVALID_KEY, IOS_KEY, IOS_VALID_KEY, JUDGED_BY_SOURCE,
                     OWN_PLANS_AND_CONTROLS, SERVER_KEY, SHARED_INVALID_KEY, TEST_EVENT, THREE_SOURCES,
                     TRACKING_PLAN_SCHEMAS, VALID_KEY, WEB_KEY, api_event, judged_by_source, response_json, track)
from reflekt_registry import handler
from reflekt_registry.errors import ConfigError, SpoolUnavailableError
from reflekt_registry.tools.publish import check_file, find_schemas, upload
from s3_support import BUCKET, create_bucket_with_schemas, lambda_env, remove_bucket

FUNCTION_DIR = Path(__file__).resolve().parents[1] / "function"


@pytest.fixture
def deployed(monkeypatch, segment):
    """A cold Lambda whose environment Terraform set; returns a function that invokes it."""
    def configure(**env: str):
        for name, value in lambda_env(segment.url, **env).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler, "_registry", None)
        return lambda event: handler.lambda_handler(event, None)
    return configure


@pytest.fixture
def s3(moto_url):
    """The schema bucket in moto, running as a real HTTP server: the Lambda path speaks HTTP to S3 itself."""
    client = boto3.client("s3", region_name="us-east-1")
    create_bucket_with_schemas(client)
    return client


def post(invoke, *events):
    return invoke(api_event({"batch": list(events)}))


def test_validates_against_schemas_in_s3(deployed, s3, segment):
    invoke = deployed()
    assert response_json(post(invoke, track(test_property="x"), track(test_property=1))) == {"success": True}
    assert len(segment.events(VALID_KEY)) == 1
    assert len(segment.events(INVALID_KEY)) == 1


def test_a_schema_update_takes_effect_within_the_ttl_without_redeploy(deployed, s3, segment):
    invoke = deployed(SCHEMA_CACHE_TTL_SECONDS="0")
    post(invoke, track(test_property="x", new_property=1))
    schema = json.loads(s3.get_object(Bucket=BUCKET, Key=f"schemas/{TEST_EVENT}")["Body"].read())
    schema["properties"]["new_property"] = {"type": "integer", "description": "Added in 1-1."}
    s3.put_object(Bucket=BUCKET, Key=f"schemas/{TEST_EVENT}", Body=json.dumps(schema))
    post(invoke, track(test_property="x", new_property=1))
    assert [len(segment.events(k)) for k in (VALID_KEY, INVALID_KEY)] == [1, 1]


def test_unchanged_schema_is_not_recompiled(deployed, s3, segment, monkeypatch):
    from reflekt_registry import schemas

    compiled = []
    real = schemas.compile_schema
    monkeypatch.setattr(schemas, "compile_schema", lambda *a: compiled.append(a[0]) or real(*a))
    invoke = deployed(SCHEMA_CACHE_TTL_SECONDS="0")  # every event re-checks S3, which answers 304
    for _ in range(3):
        post(invoke, track(test_property="x"))
    assert compiled == [TEST_EVENT]
    assert len(segment.events(VALID_KEY)) == 3


def test_s3_down_with_schema_cached_keeps_serving(deployed, s3, segment):
    invoke = deployed(SCHEMA_CACHE_TTL_SECONDS="0")
    post(invoke, track(test_property="x"))
    remove_bucket(s3)  # NoSuchBucket: the store is unusable, not the schema missing
    assert post(invoke, track(test_property="y"))["statusCode"] == 200
    assert len(segment.events(VALID_KEY)) == 2


def test_s3_down_for_an_uncached_schema_answers_503_and_forwards_nothing(deployed, s3, segment):
    invoke = deployed()
    remove_bucket(s3)
    response = post(invoke, track(schema_id="jaffle_shop/Identify/1-0.json"), track(test_property="x"))
    assert response["statusCode"] == 503
    assert segment.received == []


# What EventBridge sends for a schedule rule (aws_cloudwatch_event_rule.replay in terraform/spool.tf).
SCHEDULED_EVENT = {
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event", "source": "aws.events",
    "account": "123456789012", "time": "2026-12-03T07:00:00Z", "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/reflekt-registry-replay"], "detail": {},
}


class LambdaContext:
    """The part of the Lambda context the drain reads: how long the invocation has left."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


def spool_keys(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="spool/").get("Contents", ())]


def test_segment_refusing_spools_under_the_prefix_and_the_schedule_drains_it(deployed, s3, segment, capsys):
    """The 200 stands for an object under spool/; the scheduled invocation replays it once Segment takes events again."""
    invoke = deployed()
    segment.fail(times=1, status=400)  # refused at once: the registry does not retry a 400
    assert post(invoke, track(test_property="x", message_id="m1"))["statusCode"] == 200
    assert segment.received == [] and len(spool_keys(s3)) == 1
    assert handler.lambda_handler(SCHEDULED_EVENT, LambdaContext(10))["replayed"] == 1
    assert segment.message_ids(VALID_KEY) == ["m1"] and spool_keys(s3) == []
    drained = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ReplayedEvents"' in line]
    assert [(d["ReplayedEvents"], d["SpoolAge"]) for d in drained] == [(1, 0)]


def test_a_schedule_with_too_little_time_left_sends_nothing(deployed, s3, segment):
    invoke = deployed()
    segment.fail(times=1, status=400)
    post(invoke, track(test_property="x"))
    report = handler.lambda_handler(SCHEDULED_EVENT, LambdaContext(2))
    assert (report["replayed"], report["objects_left"]) == (0, 1)
    assert segment.received == []


def test_a_schedule_that_cannot_read_the_spool_fails_the_invocation_and_says_why(deployed, s3, registry_log, capsys):
    """The invocation fails (Lambda counts the error) and no SpoolAge is printed, so the age alarm's missing data fires."""
    deployed()
    remove_bucket(s3)
    with pytest.raises(SpoolUnavailableError, match="NoSuchBucket"):
        handler.lambda_handler(SCHEDULED_EVENT, LambdaContext(10))
    [logged] = [r for r in registry_log.records if r["message"] == "cannot drain the spool"]
    assert logged["level"] == "ERROR"
    assert "SpoolAge" not in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["REGISTRY_WRITE_KEYS", "VALID_SEGMENT_WRITE_KEY", "REGISTRY_BUCKET"])
def test_lambda_refuses_to_start_without_required_settings(deployed, monkeypatch, missing):
    invoke = deployed()
    monkeypatch.setenv(missing, "")
    with pytest.raises(ConfigError, match=missing):
        invoke(api_event({"batch": []}))


def test_end_to_end_with_a_gzipped_batch(deployed, s3, segment):
    """Any S3-compatible endpoint works through AWS_ENDPOINT_URL_S3 (here moto's), as with plain boto3."""
    invoke = deployed()
    order = {"schema_id": "jaffle_shop/Order_Completed/1-0.json", "order_id": "o1", "revenue": 12.5, "currency": "EUR",
             "products": [{"product_id": "p1", "price": 12.5, "quantity": 1}]}
    events = [{"type": "track", "event": "Order Completed", "userId": "u1", "properties": order},
              track(schema_id="jaffle_shop/Nope/1-0.json")]
    response = invoke(api_event({"batch": events}, gzip=True))
    assert response_json(response) == {"success": True}
    assert segment.events(VALID_KEY)[0]["properties"] == order
    assert "no schema with $id 'jaffle_shop/Nope/1-0.json'" in segment.events(INVALID_KEY)[0]["properties"]["validation_errors"][0]


CONFIG_KEY = "registry/config.json"


@pytest.fixture
def deployed_with_sources(monkeypatch, segment, s3):
    """A cold Lambda as Terraform deploys it with `sources`: the document in the bucket, no key variables."""
    def configure(document=THREE_SOURCES, **env: str):
        s3.put_object(Bucket=BUCKET, Key=CONFIG_KEY, Body=json.dumps(document))
        for name in ("VALID_SEGMENT_WRITE_KEY", "INVALID_SEGMENT_WRITE_KEY", "REGISTRY_WRITE_KEYS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in {"REGISTRY_BUCKET": BUCKET, "REGISTRY_BUCKET_REGION": "us-east-1", "SEGMENT_API_HOST": segment.url,
                            "REGISTRY_CONFIG_KEY": CONFIG_KEY, **env}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler, "_registry", None)
        return lambda event: handler.lambda_handler(event, None)
    return configure


def post_as(invoke, key, *events):
    return invoke(api_event({"batch": list(events)}, write_key=key))


def test_three_sources_land_in_their_own_segment_sources(deployed_with_sources, segment):
    invoke = deployed_with_sources()
    for key, prefix in ((WEB_KEY, "web"), (IOS_KEY, "ios"), (SERVER_KEY, "server")):
        response = post_as(invoke, key, track(test_property="ok", message_id=f"{prefix}-valid"),
                           track(test_property=1, message_id=f"{prefix}-invalid"))
        assert response_json(response) == {"success": True}
    assert {key: sorted(segment.message_ids(key)) for key in segment.by_key()} == {
        WEB_KEY: ["web-valid"], IOS_VALID_KEY: ["ios-valid"], SERVER_KEY: ["server-valid"],
        IOS_INVALID_KEY: ["ios-invalid"], SHARED_INVALID_KEY: ["server-invalid", "web-invalid"]}
    assert post_as(invoke, CLIENT_KEY, track(test_property="ok"))["statusCode"] == 401


def test_each_source_is_judged_by_its_own_plan_and_controls(deployed_with_sources, segment):
    upload([check_file(path, TRACKING_PLAN_SCHEMAS) for path in find_schemas(TRACKING_PLAN_SCHEMAS)], BUCKET, "schemas/")
    invoke = deployed_with_sources(OWN_PLANS_AND_CONTROLS)
    for key, prefix in ((WEB_KEY, "web"), (IOS_KEY, "ios"), (SERVER_KEY, "server")):
        assert response_json(post_as(invoke, key, *judged_by_source(prefix))) == {"success": True}
    assert {key: sorted(segment.message_ids(key)) for key in segment.by_key()} == JUDGED_BY_SOURCE


def test_a_new_document_takes_effect_within_the_ttl_and_a_bad_one_is_ignored(deployed_with_sources, s3, segment):
    invoke = deployed_with_sources(SCHEMA_CACHE_TTL_SECONDS="0")
    assert post_as(invoke, "android-key", track(test_property="ok"))["statusCode"] == 401
    added = json.loads(json.dumps(THREE_SOURCES))
    added["sources"]["android"] = {"write_keys": ["android-key"]}
    s3.put_object(Bucket=BUCKET, Key=CONFIG_KEY, Body=json.dumps(added))
    assert post_as(invoke, "android-key", track(test_property="ok", message_id="a-1"))["statusCode"] == 200
    s3.put_object(Bucket=BUCKET, Key=CONFIG_KEY, Body=b'{"version": 1, "sources": {"android": {}}}')
    assert post_as(invoke, "android-key", track(test_property="ok", message_id="a-2"))["statusCode"] == 200
    assert segment.message_ids("android-key") == ["a-1", "a-2"]


def test_the_unchanged_document_costs_a_304_not_a_download(deployed_with_sources, s3, monkeypatch):
    from reflekt_registry import document_store

    parsed = []
    real = document_store.parse
    monkeypatch.setattr(document_store, "parse", lambda *a: parsed.append(1) or real(*a))
    invoke = deployed_with_sources(SCHEMA_CACHE_TTL_SECONDS="0")
    for _ in range(3):
        post_as(invoke, WEB_KEY, track(test_property="ok"))
    assert parsed == [1]


@pytest.mark.parametrize("document,message", [
    (None, "REGISTRY_CONFIG_KEY='registry/config.json' (s3://reflekt-registry-test/registry/config.json): there is no such document"),
    ({"version": 1, "sources": {"web": {"write_keys": ["k"], "controls": {"violations": "warn"}}}, "invalid_write_key": "i"},
     "REGISTRY_CONFIG_KEY='registry/config.json' (s3://reflekt-registry-test/registry/config.json): "
     "sources.web.controls.violations: 'warn' is not one of block, allow, omit"),
], ids=["missing", "bad"])
def test_a_bad_or_missing_document_at_cold_start_names_the_key(deployed_with_sources, s3, document, message):
    invoke = deployed_with_sources({"version": 1} if document is None else document)
    if document is None:
        s3.delete_object(Bucket=BUCKET, Key=CONFIG_KEY)
    with pytest.raises(ConfigError) as excinfo:
        invoke(api_event({"batch": []}))
    assert str(excinfo.value) == message


def test_sources_and_the_key_variables_together_are_refused(deployed_with_sources, monkeypatch):
    invoke = deployed_with_sources()
    monkeypatch.setenv("REGISTRY_WRITE_KEYS", CLIENT_KEY)
    with pytest.raises(ConfigError, match="the document declares sources and the environment sets"):
        invoke(api_event({"batch": []}))


@pytest.mark.parametrize("published", [True, False], ids=["publish-with-index", "aws-s3-sync"])
def test_a_tracking_plan_in_s3_judges_events_by_name(deployed, segment, moto_url, published):
    """The tracking plan example in the bucket, uploaded by publish (with its index) or by `aws s3 sync` (without):
    events that name no schema are judged by name and version all the same."""
    from reflekt_registry.tools.publish import check_file, find_schemas, upload, write_index

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    files = [check_file(path, TRACKING_PLAN_SCHEMAS) for path in find_schemas(TRACKING_PLAN_SCHEMAS)]
    upload(files, BUCKET, "schemas/")
    if published:
        write_index(files, BUCKET, "schemas/")
    invoke = deployed()
    v2 = {"protocols": {"event_version": 2}}
    post(invoke,
         {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "v1", "properties": {"order_id": "o", "revenue": 1}},
         {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "v2", "context": v2,
          "properties": {"order_id": "o", "revenue": 1}},
         {"type": "track", "event": "Order Shipped", "userId": "u1", "messageId": "unplanned", "properties": {}})
    [valid] = segment.events(VALID_KEY)
    assert (valid["messageId"], valid["context"]["reflekt"]["schemaId"]) == ("v1", "acme/Order_Completed/1-1.json")
    invalid = {event["messageId"]: event["context"]["reflekt"] for event in segment.events(INVALID_KEY)}
    assert invalid["v2"]["schemaId"] == "acme/Order_Completed/2-0.json" and invalid["unplanned"]["unplanned"] is True


def test_publishs_index_keeps_every_cached_schema_current_without_a_request_per_schema(deployed, segment, moto_url,
                                                                                      monkeypatch):
    """The ETags publish records are the ones the Lambda's own GETs see: once the TTL is over (0 s here, so every
    lookup asks), the index's 304 vouches for every cached schema and no schema is asked for again."""
    from reflekt_registry.s3 import S3Client
    from reflekt_registry.tools.publish import check_file, find_schemas, upload, write_index

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    files = [check_file(path, TRACKING_PLAN_SCHEMAS) for path in find_schemas(TRACKING_PLAN_SCHEMAS)]
    upload(files, BUCKET, "schemas/")
    write_index(files, BUCKET, "schemas/")
    asked: list[str] = []
    real_get = S3Client.get
    monkeypatch.setattr(S3Client, "get", lambda self, bucket, key, **kw: asked.append(key) or real_get(self, bucket, key, **kw))
    invoke = deployed(SCHEMA_CACHE_TTL_SECONDS="0")
    order = {"order_id": "o", "revenue": 1}
    events = [{"type": "track", "event": "Order Completed", "userId": "u1", "properties": order},
              {"type": "track", "event": "Order Completed", "userId": "u1", "properties": order,
               "context": {"protocols": {"event_version": 2}}},
              {"type": "identify", "userId": "u1", "traits": {"email": "a@b.co"}}]
    post(invoke, *events)
    first = set(asked)
    assert {"acme/Order_Completed/1-1.json", "acme/Order_Completed/2-0.json"} <= {key.removeprefix("schemas/") for key in first}
    asked.clear()
    for _ in range(3):
        post(invoke, *events)
    assert set(asked) == {"registry/schemas/index.json"}
    assert len(segment.events(VALID_KEY)) + len(segment.events(INVALID_KEY)) == 4 * len(events)


# Runs in a fresh interpreter where boto3 and botocore cannot be imported at all, as if the runtime had none.
WITHOUT_BOTO3 = """
import json, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("boto3", "botocore", "s3transfer"):
            raise ImportError(f"{name} is blocked: the Lambda path must not import it")

class Context:
    def get_remaining_time_in_millis(self):
        return 10_000

sys.meta_path.insert(0, Refuse())
from reflekt_registry.handler import lambda_handler

response = lambda_handler(json.loads(sys.argv[1]), Context())
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("boto3", "botocore", "s3transfer"))
print(json.dumps({"response": response, "loaded": loaded}))
"""


def without_boto3(event: dict, segment, moto_url: str) -> dict:
    """The handler's answer to `event` as the first invocation of a fresh Lambda that has no boto3."""
    env = {**lambda_env(segment.url), "PATH": os.environ["PATH"], "PYTHONPATH": str(FUNCTION_DIR),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "session",
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": moto_url}
    result = subprocess.run([sys.executable, "-c", WITHOUT_BOTO3, json.dumps(event)], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["loaded"] == []
    return outcome["response"]


def test_a_first_request_with_schemas_in_s3_needs_no_boto3(s3, segment, moto_url):
    event = api_event({"batch": [track(test_property="x", message_id="no-boto3-1"), track(test_property=1)]})
    response = without_boto3(event, segment, moto_url)
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"success": True})
    assert segment.message_ids(VALID_KEY) == ["no-boto3-1"]
    assert len(segment.events(INVALID_KEY)) == 1


def test_spooling_to_s3_and_draining_it_need_no_boto3(s3, segment, moto_url):
    """The spool writes, lists, locks and deletes through the same boto3-free client as the schemas."""
    segment.fail(times=1, status=400)  # refused at once: the batch goes to the spool
    response = without_boto3(api_event({"batch": [track(test_property="x", message_id="spooled-1")]}), segment, moto_url)
    assert response["statusCode"] == 200
    assert segment.received == [] and len(spool_keys(s3)) == 1
    assert without_boto3(SCHEDULED_EVENT, segment, moto_url)["replayed"] == 1
    assert segment.message_ids(VALID_KEY) == ["spooled-1"] and spool_keys(s3) == []
