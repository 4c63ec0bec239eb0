"""Judging events against the schema they name, and marking the ones that fail."""

from __future__ import annotations

import copy
import threading
import json
from pathlib import Path
from typing import Any

import pytest

from reflekt_registry.controls import Controls, Policy
from reflekt_registry.errors import SchemaStoreUnavailableError
from reflekt_registry.forwarder import MAX_EVENT_BYTES, encode
from reflekt_registry.plans import SchemaIndex
from reflekt_registry.schemas import DirectorySource, SchemaStore, declared_names
from reflekt_registry.validator import (MAX_KEPT_VIOLATIONS, Validator, Verdict, Violation, annotate, partition,
                                        shrink)

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
THING = "t/Thing/1-0.json"
ORDER = "t/Order/1-0.json"
DEFAULTS = "t/Defaults/1-0.json"
BROKEN = "t/Broken/1-0.json"
DEEP = "t/Deep/1-0.json"
UNKNOWN = "t/Nope/1-0.json"

SCHEMAS: dict[str, Any] = {
    THING: {
        "type": "object",
        "properties": {"schema_id": {"const": THING}, "n": {"type": "integer"}},
        "required": ["schema_id", "n"],
        "additionalProperties": False,
    },
    ORDER: {
        "type": "object",
        "definitions": {"amount": {"type": "number", "minimum": 0}},
        "properties": {
            "schema_id": {"const": ORDER},
            "order_id": {"type": "string"},
            "revenue": {"$ref": "#/definitions/amount"},
            "currency": {"enum": ["USD", "EUR"]},
            "products": {"type": "array", "items": {
                "type": "object",
                "properties": {"product_id": {"type": "string"}, "price": {"$ref": "#/definitions/amount"},
                               "quantity": {"type": "integer", "minimum": 1}},
                "required": ["product_id", "price", "quantity"],
            }},
        },
        "required": ["schema_id", "order_id", "revenue", "currency", "products"],
    },
    DEFAULTS: {
        "type": "object",
        "properties": {"plan": {"type": "string", "default": "free"},
                       "cart": {"type": "object", "default": {}, "properties": {"currency": {"default": "USD"}}},
                       "n": {"type": "integer"}},
    },
    DEEP: {"type": "object", "additionalProperties": {"$ref": "#"}},
}


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    for schema_id, document in SCHEMAS.items():
        path = tmp_path / schema_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"$schema": DRAFT_07, "$id": schema_id, **document}))
    (tmp_path / BROKEN).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / BROKEN).write_text("{")
    return tmp_path


@pytest.fixture
def store(schema_dir: Path) -> SchemaStore:
    return SchemaStore(DirectorySource(schema_dir), ttl=60)


@pytest.fixture
def validator(store: SchemaStore) -> Validator:
    return Validator(store)


class RecordingStore:
    """A schema store that records what it is asked for and answers nothing useful."""

    def __init__(self, error: Exception | None = None):
        self.gets: list[str] = []
        self.error = error

    def get(self, schema_id: str) -> Any:
        self.gets.append(schema_id)
        if self.error:
            raise self.error
        raise AssertionError(f"the store was consulted for {schema_id!r}")

    def index(self) -> SchemaIndex:
        return SchemaIndex(())  # no schema has any name


def call(call_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": call_type, "userId": "u1", "messageId": "m-1", **fields}


def thing(n: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"schema_id": THING, "n": n, **extra}


def pairs(verdict: Verdict) -> set[tuple[str, str]]:
    return {(v.path, v.keyword) for v in verdict.violations}


# -- check(): which field, which call ---------------------------------------------------------------------------

FIELD_OF = [("track", "properties"), ("page", "properties"), ("screen", "properties"),
            ("identify", "traits"), ("group", "traits")]


@pytest.mark.parametrize("call_type,field", FIELD_OF)
def test_each_call_type_validates_its_own_field(validator, call_type, field):
    """track/page/screen are judged on properties, identify/group on traits; the verdict names the schema."""
    good = validator.check(call(call_type, **{field: thing(1)}))
    bad = validator.check(call(call_type, **{field: thing("one")}))
    assert good.valid and good.schema_id == THING
    assert not bad.valid and bad.schema_id == THING
    assert bad.violations == (Violation(f"$.{field}.n", "type", f"$.{field}.n must be integer"),)


@pytest.mark.parametrize("call_type,field", FIELD_OF)
def test_the_other_field_is_not_validated(validator, call_type, field):
    """Only the described field counts: junk in the other one (properties vs traits) does not make an event invalid."""
    other = "traits" if field == "properties" else "properties"
    verdict = validator.check(call(call_type, **{field: thing(1), other: {"schema_id": "../x.json", "n": "junk"}}))
    assert verdict.valid


def test_alias_is_valid_without_a_schema(validator):
    """alias carries nothing a schema describes: valid, no schema id, whatever else it holds."""
    verdict = validator.check(call("alias", previousId="p", properties={"schema_id": "../x.json"}))
    assert verdict == Verdict(None)
    assert verdict.valid


@pytest.mark.parametrize("call_type", ["identify", "group"])
@pytest.mark.parametrize("traits", ["absent", None, {}])
def test_identify_and_group_without_traits_are_valid(call_type, traits):
    """Traits are optional on identify and group; without any there is nothing to validate, and no store lookup."""
    event = call(call_type, groupId="g1")
    if traits != "absent":
        event["traits"] = traits
    store = RecordingStore()
    assert Validator(store).check(event) == Verdict(None)
    assert store.gets == []


@pytest.mark.parametrize("call_type,field,payload", [
    ("track", "properties", ["schema_id", THING]),
    ("page", "properties", "x"),
    ("screen", "properties", 5),
    ("track", "properties", True),
    ("identify", "traits", "x"),
    ("group", "traits", [{"schema_id": THING}]),
], ids=repr)
def test_a_non_object_payload_is_one_type_violation(call_type, field, payload):
    """Properties/traits that are not an object cannot name a schema: one 'type' violation at $.<field>."""
    event = call(call_type)
    if payload != "absent":
        event[field] = payload
    verdict = Validator(RecordingStore()).check(event)
    assert [(v.path, v.keyword) for v in verdict.violations] == [(f"$.{field}", "type")]
    assert verdict.schema_id is None


# -- check(): schema_id --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schema_id,keyword", [
    (5, "schema_id"),
    (True, "schema_id"),
    ([THING], "schema_id"),
    ({"$id": THING}, "schema_id"),
    ("", "schema_id"),
    ("../x.json", "schema_id"),
    ("a/../../x.json", "schema_id"),
    ("/etc/passwd.json", "schema_id"),
    ("file:///x.json", "schema_id"),
    ("http://169.254.169.254/x.json", "schema_id"),
    ("C:\\x.json", "schema_id"),
    (".reflekt/meta/1-0.json", "schema_id"),
    ("t/Thing/1-0", "schema_id"),
], ids=repr)
def test_a_missing_or_unusable_schema_id_is_one_violation_without_a_lookup(schema_id, keyword):
    """No id, a non-string id or a path trick: one violation at $.properties.schema_id, and no store lookup."""
    properties: dict[str, Any] = {"n": 1}
    if schema_id != "absent":
        properties["schema_id"] = schema_id
    store = RecordingStore()
    verdict = Validator(store).check(call("track", event="E", properties=properties))
    assert [(v.path, v.keyword) for v in verdict.violations] == [("$.properties.schema_id", keyword)]
    assert verdict.schema_id is None
    assert store.gets == []


def test_a_huge_bad_schema_id_is_quoted_only_in_part():
    """The message quotes at most the start of a hostile id, so one event cannot bloat the annotation."""
    verdict = Validator(RecordingStore()).check(call("track", properties={"schema_id": "../" * 10_000 + "x.json"}))
    [violation] = verdict.violations
    assert len(violation.message) < 250


def test_an_unknown_schema_is_a_schema_violation_with_the_stores_reason(validator, store):
    """An id with no schema is invalid under the 'schema' keyword, carrying the store's reason and the id."""
    verdict = validator.check(call("track", properties={"schema_id": UNKNOWN, "n": 1}))
    assert verdict.schema_id == UNKNOWN
    assert verdict.violations == (Violation("$.properties.schema_id", "schema", store.get(UNKNOWN).reason),)
    assert UNKNOWN in verdict.violations[0].message


def test_a_broken_schema_makes_its_events_invalid_with_the_reason(validator):
    """Events naming a schema that cannot compile are invalid and say why, rather than failing the request."""
    verdict = validator.check(call("track", properties={"schema_id": BROKEN}))
    [violation] = verdict.violations
    assert (violation.path, violation.keyword) == ("$.properties.schema_id", "schema")
    assert "not valid JSON" in violation.message


def test_an_unavailable_store_raises():
    """When the store cannot answer, check() raises (the request gets a 503) instead of judging the event."""
    store = RecordingStore(error=SchemaStoreUnavailableError("S3 is down"))
    with pytest.raises(SchemaStoreUnavailableError):
        Validator(store).check(call("track", properties=thing()))
    assert store.gets == [THING]


# -- check(): violations ----------------------------------------------------------------------------------------

def test_every_violation_is_reported_with_its_json_path(validator):
    """All violations, not just the first, each at a JSONPath into the event, array indexes included."""
    properties = {
        "schema_id": ORDER, "order_id": 7, "revenue": -1, "currency": "JPY",
        "products": [{"product_id": "p1", "price": 1, "quantity": 1},
                     {"product_id": "p2", "price": "free", "quantity": 0},
                     {"price": 2, "quantity": 1}],
    }
    verdict = validator.check(call("track", event="Order Completed", properties=properties))
    assert pairs(verdict) == {
        ("$.properties.order_id", "type"),
        ("$.properties.revenue", "minimum"),
        ("$.properties.currency", "enum"),
        ("$.properties.products[1].price", "type"),
        ("$.properties.products[1].quantity", "minimum"),
        ("$.properties.products[2]", "required"),
    }
    assert len(verdict.violations) == 6
    for violation in verdict.violations:
        assert violation.message.startswith(violation.path + " "), violation
        assert "data" not in violation.message


def test_a_violation_of_the_whole_payload_is_at_the_field(validator):
    """A failure of the payload itself (a missing or extra property) is reported at $.properties."""
    verdict = validator.check(call("track", properties={"schema_id": THING, "extra": 1}))
    assert pairs(verdict) == {("$.properties", "required"), ("$.properties", "additionalProperties")}
    assert all(v.message.startswith("$.properties ") for v in verdict.violations)


@pytest.mark.parametrize("schema_id,payload", [
    (DEFAULTS, {"cart": {}}),
    (DEFAULTS, {"n": "not an integer"}),
    (ORDER, {"products": [{"price": "free"}]}),
])
def test_check_leaves_the_event_untouched(validator, schema_id, payload):
    """Valid or not, check() changes nothing in the event (no schema defaults filled in)."""
    event = call("track", event="E", properties={"schema_id": schema_id, **payload}, context={"ip": "203.0.113.9"})
    before = copy.deepcopy(event)
    validator.check(event)
    assert event == before


def test_data_too_deep_for_the_validator_is_judged_invalid_not_raised(validator):
    """Nesting deep enough to break the generated code makes the event invalid; the request still succeeds."""
    properties: dict[str, Any] = {"schema_id": DEEP}
    node = properties
    for _ in range(5_000):
        node["a"] = {}
        node = node["a"]
    verdict = validator.check(call("track", properties=properties))
    assert [(v.path, v.keyword) for v in verdict.violations] == [("$.properties", "error")]


# -- annotate() -----------------------------------------------------------------------------------------------------

VERDICT = Verdict(THING, (Violation("$.properties.n", "type", "$.properties.n must be integer"),
                          Violation("$.properties", "required", "$.properties must contain ['n'] properties")))


def test_annotate_adds_the_legacy_list_and_the_structured_record():
    """properties.validation_errors gets the messages, context.reflekt the id and violations; the rest is kept."""
    event = call("track", event="E", properties={"schema_id": THING, "n": "x"},
                 context={"ip": "203.0.113.9", "library": {"name": "analytics.js"}})
    assert annotate(event, VERDICT) is event
    assert event["properties"] == {"schema_id": THING, "n": "x", "validation_errors": [
        "$.properties.n must be integer", "$.properties must contain ['n'] properties"]}
    assert event["context"] == {"ip": "203.0.113.9", "library": {"name": "analytics.js"}, "reflekt": {
        "schemaId": THING,
        "violations": [{"path": "$.properties.n", "keyword": "type", "message": "$.properties.n must be integer"},
                       {"path": "$.properties", "keyword": "required",
                        "message": "$.properties must contain ['n'] properties"}],
    }}
    assert {k: event[k] for k in ("type", "event", "userId", "messageId")} == {
        "type": "track", "event": "E", "userId": "u1", "messageId": "m-1"}


@pytest.mark.parametrize("call_type", ["identify", "group"])
def test_annotate_marks_traits_on_identify_and_group(call_type):
    """For identify/group the legacy list goes into traits, and no properties object is invented."""
    event = annotate(call(call_type, traits={"email": "x"}), VERDICT)
    assert event["traits"]["validation_errors"] == [v.message for v in VERDICT.violations]
    assert "properties" not in event
    assert event["context"]["reflekt"]["schemaId"] == THING


@pytest.mark.parametrize("junk", [None, "x", 5, [1, 2], True], ids=repr)
def test_annotate_replaces_a_non_object_payload_and_context(junk):
    """A properties or context that is not an object is replaced, since it must carry the annotation."""
    event = annotate(call("track", properties=junk, context=junk), VERDICT)
    assert event["properties"] == {"validation_errors": [v.message for v in VERDICT.violations]}
    assert list(event["context"]) == ["reflekt"]


def test_annotate_without_a_schema_id_records_null():
    """A verdict that never got to a schema is recorded with schemaId null."""
    event = annotate(call("track"), Verdict(None, (Violation("$.properties", "type", "m"),)))
    assert event["context"]["reflekt"] == {"schemaId": None, "violations": [{"path": "$.properties", "keyword": "type",
                                                                             "message": "m"}]}
    assert all(isinstance(m, str) for m in event["properties"]["validation_errors"])


# -- shrink() -------------------------------------------------------------------------------------------------------

def oversized(text: str) -> dict[str, Any]:
    """An event with every kept field, the context and a prior annotation made huge out of `text`."""
    huge = text * 2_000  # far past any clip, small enough to build quickly
    event: dict[str, Any] = {name: huge for name in ("event", "name", "category", "userId", "anonymousId", "groupId",
                                                     "previousId", "messageId", "timestamp", "originalTimestamp",
                                                     "sentAt")}
    event["type"] = "track"
    event["properties"] = {"schema_id": huge, "blob": huge}
    event["context"] = {"ip": huge, "library": {"name": huge}, "page": {"url": huge}}
    violations = [Violation(huge, huge, huge)] * 100
    return annotate(event, Verdict(huge, tuple(violations)))


@pytest.mark.parametrize("text", ["x", '"', "\\", "\x00", "é", "\u2028", "\U0001f600"],
                         ids=["ascii", "quote", "backslash", "control", "latin-1", "line-separator", "emoji"])
def test_shrink_always_fits_segments_event_limit(text):
    """Whatever the client sent (huge fields and violations, any characters), the encoded stand-in is under 32 KB."""
    stand_in = shrink(oversized(text), 10_000_000, MAX_EVENT_BYTES)
    size = len(encode(stand_in))
    assert size < MAX_EVENT_BYTES


def test_shrink_keeps_identity_and_drops_data():
    """The stand-in keeps what finds and joins the event (type, messageId, userId...) and none of its data."""
    event = {"type": "track", "event": "Order Completed", "userId": "u1", "anonymousId": "a1", "messageId": "m-1",
             "timestamp": "2026-11-26T18:00:00.000Z", "integrations": {"All": True},
             "properties": {"schema_id": ORDER, "blob": "x" * 40_000},
             "context": {"ip": "203.0.113.9", "library": {"name": "analytics-python", "version": "2.4.0"},
                         "page": {"url": "https://shop.example.com"}}}
    stand_in = shrink(event, 40_321, MAX_EVENT_BYTES)
    assert {k: stand_in[k] for k in ("type", "event", "userId", "anonymousId", "messageId", "timestamp")} == {
        k: event[k] for k in ("type", "event", "userId", "anonymousId", "messageId", "timestamp")}
    assert stand_in["properties"] == {"validation_errors": [
        f"event is 40321 bytes; Segment accepts at most {MAX_EVENT_BYTES}, so its data was dropped"]}
    assert set(stand_in["context"]) == {"ip", "library", "reflekt"}
    assert stand_in["context"]["library"] == {"name": "analytics-python", "version": "2.4.0"}
    assert "integrations" not in stand_in
    assert event["properties"]["blob"] == "x" * 40_000  # the original is not what was shrunk


def test_shrink_keeps_the_prior_violations_after_the_size_one():
    """An invalid event that is also too big keeps its schema id and violations, after the maxSize one."""
    event = annotate(call("track", properties={"schema_id": THING, "n": "x" * 40_000}), VERDICT)
    stand_in = shrink(event, 40_500, MAX_EVENT_BYTES)
    record = stand_in["context"]["reflekt"]
    assert record["schemaId"] == THING
    assert [v["keyword"] for v in record["violations"]] == ["maxSize", "type", "required"]
    assert len(stand_in["properties"]["validation_errors"]) == 3


def test_shrink_keeps_at_most_the_first_violations():
    """However many violations there were, the stand-in carries at most MAX_KEPT_VIOLATIONS."""
    event = annotate(call("track"), Verdict(THING, tuple(Violation(f"$.p{i}", "type", "m") for i in range(500))))
    stand_in = shrink(event, 50_000, MAX_EVENT_BYTES)
    kept = stand_in["context"]["reflekt"]["violations"]
    assert len(kept) == MAX_KEPT_VIOLATIONS
    assert [v["path"] for v in kept[1:3]] == ["$.p0", "$.p1"]


@pytest.mark.parametrize("prior", [
    {"violations": "not a list"},
    {"violations": None},
    {"violations": [1, "x"]},
    {"violations": [{"path": "$.x"}]},
    {"violations": {"path": "$.x"}},
    "not an object",
], ids=repr)
def test_shrink_survives_a_malformed_annotation_sent_by_the_client(prior):
    """context.reflekt on an incoming event is the client's; a malformed one cannot stop the stand-in being made."""
    event = call("track", properties={"schema_id": THING, "blob": "x" * 40_000}, context={"reflekt": prior})
    stand_in = shrink(event, 40_100, MAX_EVENT_BYTES)
    assert stand_in["context"]["reflekt"]["violations"][0]["keyword"] == "maxSize"
    assert len(encode(stand_in)) < MAX_EVENT_BYTES


# -- partition() -----------------------------------------------------------------------------------------------------

def test_partition_keeps_order_and_annotates_only_the_invalid():
    """Valid events come out as they went in, invalid ones annotated, each list in the original order."""
    events = [call("track", messageId=f"m-{i}", properties={"schema_id": THING}) for i in range(5)]
    originals = copy.deepcopy(events)
    bad = Verdict(THING, (Violation("$.properties", "required", "$.properties must contain ['n'] properties"),))
    verdicts = [Verdict(THING), bad, Verdict(THING), bad, Verdict(None)]
    valid, invalid = partition(events, verdicts)
    assert [e["messageId"] for e in valid] == ["m-0", "m-2", "m-4"]
    assert [e["messageId"] for e in invalid] == ["m-1", "m-3"]
    assert valid == [originals[0], originals[2], originals[4]]
    assert all(e["context"]["reflekt"]["schemaId"] == THING for e in invalid)


def test_partition_refuses_mismatched_lists():
    """An event without a verdict is a bug, not something to skip silently."""
    with pytest.raises(ValueError):
        partition([call("track")], [])


# -- check(): by name, within the plans, under the controls ---------------------------------------------------------

def reflekt_schema(schema_id: str, name: str, properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {"$schema": DRAFT_07, "$id": schema_id, "self": {"name": name, "version": schema_id[-8:-5]},
            "type": "object", "properties": properties, "required": required, **extra}


STRING = {"type": "string"}
PLAN_SCHEMAS = [
    reflekt_schema("shop/Signed_Up/1-0.json", "Signed Up", {"plan": STRING}, ["plan"]),
    reflekt_schema("shop/Signed_Up/1-1.json", "Signed Up", {"plan": STRING, "coupon": STRING}, ["plan"]),
    reflekt_schema("shop/Signed_Up/2-0.json", "Signed Up", {"plan": {"enum": ["free", "pro"]}, "seats": {"type": "integer"}}, ["plan", "seats"]),
    reflekt_schema("shop/Identify/1-0.json", "Identify", {"email": STRING}, ["email"]),
    reflekt_schema("shop/Group/1-0.json", "Group", {"name": STRING}, ["name"]),
    reflekt_schema("shop/Page_Viewed/1-0.json", "Page Viewed", {"path": STRING}, ["path"]),
    reflekt_schema("shop/Screen_Viewed/1-0.json", "Screen Viewed", {"name": STRING}, ["name"]),
    reflekt_schema("other/Identify/1-0.json", "Identify", {}, []),
    reflekt_schema("common/Payload/1-0.json", "Payload", {"userId": STRING, "context": {
        "type": "object", "properties": {"app": {"type": "object", "required": ["version"]}}, "required": ["app"]}},
        ["context"]),
]
SHOP = Policy(("shop/",))


def with_controls(**controls: Any) -> Policy:
    return Policy(("shop/",), Controls(**controls))


def validator_over(root: Path, documents: list[dict[str, Any]]) -> Validator:
    """A validator whose store is a folder holding these schemas, each at its $id."""
    for document in documents:
        path = root / document["$id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
    return Validator(SchemaStore(DirectorySource(root), ttl=60))


@pytest.fixture
def plan(tmp_path: Path) -> Validator:
    return validator_over(tmp_path, PLAN_SCHEMAS)


def signed_up(version: Any = None, **properties: Any) -> dict[str, Any]:
    event = call("track", event="Signed Up", properties=properties)
    if version is not None:
        event["context"] = {"protocols": {"event_version": version}}
    return event


@pytest.mark.parametrize("event,schema_id", [
    (signed_up(plan="pro"), "shop/Signed_Up/1-1.json"),
    (signed_up(1, plan="pro"), "shop/Signed_Up/1-1.json"),
    (signed_up(2, plan="pro", seats=3), "shop/Signed_Up/2-0.json"),
    (signed_up("2", plan="pro"), "shop/Signed_Up/1-1.json"),
    (call("identify", traits={"email": "a@b.co"}), "shop/Identify/1-0.json"),
    (call("identify", context={"traits": {"email": "a@b.co"}}), "shop/Identify/1-0.json"),
    (call("group", groupId="g", traits={"name": "Acme"}), "shop/Group/1-0.json"),
    (call("page", name="Home", properties={"path": "/"}), "shop/Page_Viewed/1-0.json"),
    (call("screen", name="Home", properties={"name": "Home"}), "shop/Screen_Viewed/1-0.json"),
], ids=lambda v: repr(v)[:60])
def test_each_call_type_finds_its_schema_by_name(plan, event, schema_id):
    verdict = plan.check(event, SHOP)
    assert verdict.valid and verdict.schema_id == schema_id and verdict.resolution.schema_id == schema_id


def test_context_traits_are_judged_where_they_are(plan):
    verdict = plan.check(call("identify", context={"traits": {"email": 5}}), SHOP)
    assert pairs(verdict) == {("$.context.traits.email", "type")}


def test_a_schema_id_the_schema_does_not_declare_is_routing_metadata(plan):
    """It never makes the event invalid, and the event is forwarded with it."""
    event = call("track", event="Signed Up", properties={"schema_id": "shop/Signed_Up/1-0.json", "plan": "pro"})
    verdict = plan.check(event, Policy(("shop/",), Controls(unplanned_properties="omit")))
    assert verdict.valid and verdict.omitted == ()
    valid, _ = partition([event], [verdict])
    assert valid[0]["properties"] == {"schema_id": "shop/Signed_Up/1-0.json", "plan": "pro"}


def test_schema_id_names_the_schema_whatever_the_plans(plan):
    event = call("identify", traits={"schema_id": "other/Identify/1-0.json", "anything": 1})
    assert plan.check(event, SHOP).schema_id == "other/Identify/1-0.json"


def test_an_ambiguous_name_is_invalid_whatever_the_controls(plan):
    verdict = plan.check(call("identify", traits={"email": "a@b.co"}), Policy((), Controls(violations="allow")))
    assert verdict.blocked and [v.keyword for v in verdict.violations] == ["ambiguous"]
    assert "other/, shop/" in verdict.violations[0].message


def test_an_unplanned_track_is_blocked_by_default(plan):
    verdict = plan.check(call("track", event="Nope", properties={}), SHOP)
    assert verdict.blocked and verdict.unplanned
    assert verdict.violations == (Violation("$.event", "unplanned", "no schema named 'Nope' in the plans shop/"),)


def test_an_unplanned_track_can_be_allowed_and_is_marked(plan):
    event = call("track", event="Nope", properties={"x": 1})
    verdict = plan.check(event, with_controls(unplanned_events="allow"))
    assert not verdict.blocked and verdict.unplanned
    valid, invalid = partition([event], [verdict])
    assert invalid == [] and valid[0]["context"]["reflekt"] == {"schemaId": None, "violations": [], "unplanned": True}
    assert valid[0]["properties"] == {"x": 1}


@pytest.mark.parametrize("event", [call("page", name="Home"), call("screen", name="Home"), call("identify", traits={"a": 1})])
def test_calls_other_than_track_are_never_unplanned(tmp_path, event):
    """As in Protocols: a plan without a Page Viewed schema does not block every page view analytics.js sends."""
    assert Validator(SchemaStore(DirectorySource(tmp_path), ttl=60)).check(event, SHOP) == Verdict(None)


def test_the_annotation_says_which_version_and_why(plan):
    event = signed_up(7, plan="pro")
    valid, _ = partition([event], [plan.check(event, SHOP)])
    assert valid[0]["context"]["reflekt"] == {
        "schemaId": "shop/Signed_Up/1-1.json", "violations": [], "versionReason": "event_version names no major"}
    assert valid[0]["context"]["protocols"] == {"event_version": 7}


def test_unplanned_properties_are_omitted_before_judging_and_forwarding(plan):
    event = signed_up(plan="pro", coupon="X", secret="s", other=1)
    verdict = plan.check(event, with_controls(unplanned_properties="omit"))
    assert verdict.valid and verdict.omitted == ("secret", "other")
    valid, _ = partition([event], [verdict])
    assert valid[0]["properties"] == {"plan": "pro", "coupon": "X"}
    assert valid[0]["context"]["reflekt"]["omitted"] == ["secret", "other"]


def test_unplanned_traits_are_omitted_too(plan):
    event = call("identify", traits={"email": "a@b.co", "ssn": "x"})
    valid, _ = partition([event], [plan.check(event, with_controls(unplanned_properties="omit"))])
    assert valid[0]["traits"] == {"email": "a@b.co"}


def test_by_default_unplanned_properties_are_the_schemas_business(plan):
    assert plan.check(signed_up(plan="pro", extra=1), SHOP).valid  # the schema allows additional properties


def test_allowed_violations_go_to_the_valid_source_annotated(plan):
    event = signed_up(2, plan="gold", seats=1)
    verdict = plan.check(event, with_controls(violations="allow"))
    assert not verdict.valid and not verdict.blocked
    valid, invalid = partition([event], [verdict])
    assert invalid == [] and "validation_errors" not in valid[0]["properties"]
    assert valid[0]["context"]["reflekt"]["allowed"] is True
    assert valid[0]["context"]["reflekt"]["violations"][0]["path"] == "$.properties.plan"


@pytest.mark.parametrize("properties", [{"plan": "pro"}, {"plan": "gold", "seats": 1}])
def test_violations_that_omission_cannot_cure_still_block(plan, properties):
    """A missing required property cannot be dropped; dropping a required one leaves the event failing."""
    verdict = plan.check(signed_up(2, **properties), with_controls(violations="omit"))
    assert verdict.blocked and verdict.omitted == ()


def test_an_optional_offending_property_is_omitted(plan):
    event = signed_up(1, plan="pro", coupon=5)
    verdict = plan.check(event, with_controls(violations="omit"))
    assert not verdict.blocked and verdict.omitted == ("coupon",)
    valid, invalid = partition([event], [verdict])
    assert invalid == [] and valid[0]["properties"] == {"plan": "pro"}
    assert valid[0]["context"]["reflekt"]["omitted"] == ["coupon"]


DOTTED = reflekt_schema("shop/Signed_Up/1-0.json", "Signed Up", {
    "a": {"type": "object", "properties": {"b": STRING}}, "a.b": STRING,
    "x": {"type": "array", "items": STRING}, "x[0]": STRING,
}, [])


@pytest.mark.parametrize("properties,offending", [
    ({"a": {"b": "ok"}, "a.b": 5}, "a.b"),
    ({"a": {"b": 5}, "a.b": "ok"}, "a"),
    ({"x": ["ok"], "x[0]": 5}, "x[0]"),
    ({"x": [5], "x[0]": "ok"}, "x"),
])
def test_the_offending_property_is_told_from_a_sibling_its_name_extends(tmp_path, properties, offending):
    """fastjsonschema writes b in "a" and a property "a.b" alike (data.a.b), and x's first item like "x[0]"."""
    verdict = validator_over(tmp_path, [DOTTED]).check(signed_up(**properties), with_controls(violations="omit"))
    assert not verdict.blocked and verdict.omitted == (offending,)


def test_a_violation_both_siblings_share_blocks_rather_than_guess(tmp_path):
    verdict = validator_over(tmp_path, [DOTTED]).check(signed_up(**{"a": {"b": 5}, "a.b": 5}), with_controls(violations="omit"))
    assert verdict.blocked and verdict.omitted == ()


COMMON = "common/Payload/1-0.json"


@pytest.mark.parametrize("mode,blocked", [("block", True), ("allow", False)])
def test_the_common_schema_judges_every_whole_event(plan, mode, blocked):
    alias = call("alias", previousId="p")
    verdict = plan.check(alias, with_controls(common_schema=COMMON, common_schema_violations=mode))
    assert [(v.path, v.keyword) for v in verdict.violations] == [("$", "required")]
    assert verdict.blocked is blocked
    assert plan.check({**alias, "context": {"app": {"version": "1.0"}}}, with_controls(common_schema=COMMON)).valid


def test_an_allowed_common_schema_does_not_unblock_the_events_own_violations(plan):
    verdict = plan.check(signed_up(2, plan="gold", seats=1), with_controls(common_schema=COMMON, common_schema_violations="allow"))
    assert verdict.blocked


@pytest.mark.parametrize("common_id", ["common/Nope/1-0.json", "../outside/1-0.json"])
def test_a_missing_or_malformed_common_schema_is_a_violation_naming_it(plan, common_id):
    verdict = plan.check(call("alias"), with_controls(common_schema=common_id))
    assert verdict.blocked and "common schema is unusable" in verdict.violations[0].message
    assert repr(common_id) in verdict.violations[0].message


def test_an_unusable_common_schema_leaves_the_events_own_schema_known(plan):
    """Metrics count events by their own schema: a misconfigured common schema must not fold them all into one."""
    verdict = plan.check(signed_up(plan="pro"), with_controls(common_schema="common/Nope/1-0.json"))
    assert verdict.blocked and verdict.schema_id == "shop/Signed_Up/1-1.json" and verdict.schema_known


def test_an_unplanned_track_without_schema_id_is_one_violation(plan):
    """What the original registry called a missing schema_id: the event's name finds no schema."""
    for properties in ({"n": 1}, {"schema_id": None, "n": 1}):
        verdict = Validator(RecordingStore()).check(call("track", event="E", properties=properties))
        assert [(v.path, v.keyword) for v in verdict.violations] == [("$.event", "unplanned")]


@pytest.mark.parametrize("call_type", ["track", "page", "screen"])
def test_absent_properties_are_judged_as_none(plan, call_type):
    """Segment reads a call without properties as one with none; the schema decides."""
    event = call(call_type, event="Signed Up", name="Home")
    assert plan.check(event, SHOP).violations[0].keyword == "required"


@pytest.mark.parametrize("schema", [
    pytest.param({"$ref": "#/definitions/order", "definitions": {"order": {
        "type": "object", "properties": {"plan": STRING, "seats": {"type": "integer"}}, "required": ["plan"]}}},
        id="root-ref"),
    pytest.param({"allOf": [{"properties": {"plan": STRING}, "required": ["plan"]}, {"properties": {"seats": {}}}]},
        id="allOf"),
])
def test_omitting_unplanned_properties_follows_refs_and_allof(tmp_path, schema):
    validator = validator_over(tmp_path, [{**reflekt_schema("shop/Signed_Up/1-0.json", "Signed Up", {}, []), **schema}])
    event = signed_up(plan="pro", seats=2, secret="s")
    verdict = validator.check(event, with_controls(unplanned_properties="omit"))
    assert verdict.valid and verdict.omitted == ("secret",)


@pytest.mark.parametrize("schema", [
    pytest.param({"patternProperties": {"^x_": STRING}}, id="patternProperties"),
    pytest.param({"anyOf": [{"properties": {"plan": STRING}}, {"properties": {"x_color": {}}}]}, id="anyOf"),
])
def test_omitting_drops_nothing_when_the_planned_names_cannot_be_told(tmp_path, schema):
    validator = validator_over(tmp_path, [{**reflekt_schema("shop/Signed_Up/1-0.json", "Signed Up", {"plan": STRING}, []), **schema}])
    verdict = validator.check(signed_up(plan="pro", x_color="red"), with_controls(unplanned_properties="omit"))
    assert verdict.valid and verdict.omitted == ()


def test_declared_names_give_up_on_a_reference_they_cannot_follow():
    assert declared_names({"properties": {"a": {}}, "$ref": "other.json#/order"}) is None
    assert declared_names({"properties": {"a": {}}, "$ref": "#/definitions/missing"}) is None
    assert declared_names({"properties": {"a": {}}, "$ref": ["#"]}) is None
    assert declared_names({"properties": {"a": {}}, "allOf": [{"$ref": "#"}]}) == frozenset({"a"})  # a loop ends


# -- check_all(): a request's events ----------------------------------------------------------------------------

class ThreadRecordingSource(DirectorySource):
    """A folder that may be read several ids at once, remembering which thread read each one."""

    concurrency = 4

    def __init__(self, root: Path):
        super().__init__(root)
        self.reads: list[tuple[str, str]] = []

    def fetch(self, schema_id: str, known_version: str | None) -> Any:
        self.reads.append((schema_id, threading.current_thread().name))
        return super().fetch(schema_id, known_version)


def test_check_all_judges_as_check_does_after_fetching_the_batchs_schemas_together(tmp_path):
    """Events found by name and by schema_id, an unplanned one, a bad id and an alias, under a common schema: the
    verdicts check gives one by one, after the store's workers have read every schema they need, each once."""
    plan = validator_over(tmp_path, PLAN_SCHEMAS)
    source = ThreadRecordingSource(tmp_path)
    batch = [signed_up(plan="pro"), signed_up(2, plan="gold", seats=1), call("identify", traits={"email": "a@b.co"}),
             call("track", properties={"schema_id": "shop/Group/1-0.json", "name": "Acme"}), signed_up(plan="pro"),
             call("track", event="Nope"), call("track", properties={"schema_id": "../x.json"}), call("alias")]
    policy = with_controls(common_schema=COMMON)
    verdicts = Validator(SchemaStore(source, ttl=60)).check_all(copy.deepcopy(batch), policy)
    assert verdicts == [plan.check(event, policy) for event in batch]
    assert sorted(schema_id for schema_id, _ in source.reads) == sorted([
        "shop/Signed_Up/1-1.json", "shop/Signed_Up/2-0.json", "shop/Identify/1-0.json", "shop/Group/1-0.json", COMMON])
    assert all(thread.startswith("schemas") for _, thread in source.reads)
