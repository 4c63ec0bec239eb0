"""`publish_plan`: what a publish would do, from the project's and the bucket's schemas alone."""

from __future__ import annotations

import json

import pytest

from reflekt_registry.tools.publish_plan import BUCKET_ONLY, CHANGED, NEW, PRUNE, REFUSED, UNCHANGED, plan, version_of

FAMILY = "shop/Order_Completed"


def schema(version: str, *, extra: dict | None = None, required: tuple[str, ...] = ("order_id",), closed: bool = True,
           **top: object) -> bytes:
    """A Reflekt schema for shop/Order_Completed/<version>.json, as JSON text."""
    document = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"{FAMILY}/{version}.json",
        "self": {"vendor": "com.example", "name": "Order Completed", "format": "jsonschema", "version": version,
                 "metadata": {}},
        "type": "object",
        "properties": {"schema_id": {"type": "string", "const": f"{FAMILY}/{version}.json"},
                       "order_id": {"type": "string"}, **(extra or {})},
        "required": ["schema_id", *required],
        **({"additionalProperties": False} if closed else {}),
        **top,
    }
    return json.dumps(document, indent=2).encode()


def sid(version: str) -> str:
    return f"{FAMILY}/{version}.json"


def statuses(result) -> dict[str, str]:
    return {entry.schema_id: entry.status for entry in result.entries}


def problems(result, version: str) -> str:
    return "\n".join(next(e for e in result.entries if e.schema_id == sid(version)).problems)


COUPON = {"coupon": {"type": "string"}}


def test_versions_are_read_from_file_names():
    assert version_of("a/b/E/12-3.json") == ("a/b/E", 12, 3)
    assert version_of("a/E/1-02.json") is None and version_of("1-0.json") is None


def test_a_compatible_history_offline_is_all_new():
    result = plan({sid("1-0"): schema("1-0"), sid("1-1"): schema("1-1", extra=COUPON)})
    assert statuses(result) == {sid("1-0"): NEW, sid("1-1"): NEW}
    assert not result.refused


def test_a_major_is_free():
    result = plan({sid("1-0"): schema("1-0"), sid("2-0"): schema("2-0", extra=COUPON, required=("coupon",))})
    assert not result.refused


def test_a_minor_that_requires_a_new_property_is_refused_with_path_rule_and_fix():
    result = plan({sid("1-0"): schema("1-0"), sid("1-1"): schema("1-1", extra=COUPON, required=("order_id", "coupon"))})
    assert statuses(result)[sid("1-1")] == REFUSED
    assert problems(result, "1-1") == (
        f"does not accept every event {sid('1-0')} accepts: $.properties.coupon: new required property; make the "
        "change 2-0, or keep coupon optional [REQUIRED_PROPERTY_ADDED]")


@pytest.mark.parametrize(("files", "blamed", "message"), [
    ({"1-1": {}}, "1-1", "a family starts at 1-0, not 1-1"),
    ({"0-1": {}}, "0-1", "a family starts at 1-0, not 0-1"),
    ({"1-0": {}, "1-2": {}}, "1-2", "1-2 cannot follow 1-0: versions have no gaps, so 1-1 or 2-0 comes next"),
    ({"1-0": {}, "3-0": {}}, "3-0", "3-0 cannot follow 1-0"),
    ({"1-0": {"self": {"vendor": "v", "name": "Order Completed", "version": "1-1"}}}, "1-0",
     "self.version is '1-1' but the file is 1-0.json; they must agree"),
    ({"1-0": {"self": {"vendor": "v", "name": "Order Placed", "version": "1-0"}}}, "1-0",
     "self.name is 'Order Placed' but the folder is 'Order_Completed'"),
], ids=["starts-above-1-0", "starts-at-major-0", "minor-gap", "major-gap", "self-version", "self-name"])
def test_sequencing(files, blamed, message):
    project = {sid(v): schema(v, **top) for v, top in files.items()}
    result = plan(project)
    assert statuses(result)[sid(blamed)] == REFUSED
    assert message in problems(result, blamed)


def test_a_file_not_named_after_a_version_is_refused():
    result = plan({"shop/Order_Completed/latest.json": schema("1-0")})
    assert "the file name must be the version, MAJOR-MINOR.json" in result.refused[0].problems[0]


def test_sequencing_counts_the_bucket_too():
    """A team may delete 1-0 from its project after bumping; the bucket still has it."""
    result = plan({sid("1-1"): schema("1-1", extra=COUPON)}, {sid("1-0"): schema("1-0")})
    assert statuses(result) == {sid("1-0"): BUCKET_ONLY, sid("1-1"): NEW}


def test_a_minor_is_checked_against_an_earlier_minor_only_in_the_bucket():
    bucket = {sid("1-0"): schema("1-0", extra=COUPON)}
    result = plan({sid("1-1"): schema("1-1")}, bucket)
    assert "PROPERTY_REMOVED_FROM_CLOSED_OBJECT" in problems(result, "1-1")
    assert f"does not accept every event {sid('1-0')} accepts" in problems(result, "1-1")


def test_compatibility_is_transitive_over_every_earlier_minor():
    """1-1 was forced in once; a 1-2 that copies it must still accept what 1-0 accepted."""
    bucket = {sid("1-0"): schema("1-0", extra=COUPON), sid("1-1"): schema("1-1")}
    result = plan({**bucket, sid("1-2"): schema("1-2")}, bucket)
    assert statuses(result)[sid("1-1")] == UNCHANGED  # the bucket's own past is not this publish's to refuse
    assert f"does not accept every event {sid('1-0')} accepts" in problems(result, "1-2")
    assert sid("1-1") + " accepts" not in problems(result, "1-2")


def test_a_published_version_is_immutable():
    bucket = {sid("1-0"): schema("1-0")}
    result = plan({sid("1-0"): schema("1-0", extra=COUPON, required=("order_id", "coupon"))}, bucket)
    assert statuses(result)[sid("1-0")] == REFUSED
    text = problems(result, "1-0")
    assert "its content changed, but a published version is immutable" in text
    assert f"publish the change as {sid('1-1')} if it is compatible" in text
    assert "$.properties.coupon: new required property" in text


def test_an_annotation_only_edit_goes_through():
    edited = json.loads(schema("1-0"))
    edited["description"] = "Now described."
    edited["self"]["metadata"] = {"owner": "growth"}
    result = plan({sid("1-0"): json.dumps(edited).encode()}, {sid("1-0"): schema("1-0")})
    assert [(e.status, e.note) for e in result.entries] == [(CHANGED, "annotations only")]


def test_changing_the_draft_of_a_published_version_is_not_an_annotation_edit():
    """A draft-06 schema ignores if/then/else; the same keywords under draft-07 start rejecting events."""
    def published(draft: str) -> bytes:
        document = json.loads(schema("1-0", closed=False, **{"if": {"required": ["coupon"]},
                                                             "then": {"required": ["discount"]}}))
        return json.dumps({**document, "$schema": f"http://json-schema.org/{draft}/schema#"}).encode()

    result = plan({sid("1-0"): published("draft-07")}, {sid("1-0"): published("draft-06")})
    assert statuses(result) == {sid("1-0"): REFUSED}
    assert "$schema draft-06 → draft-07" in problems(result, "1-0")


@pytest.mark.parametrize("published", [b"[]", b'"x"', b"null", b"not json", b'{"properties": []}',
                                       b'{"patternProperties": {"(": {}}}'],
                         ids=["array", "string", "null", "not-json", "properties-not-an-object", "broken-regex"])
def test_a_bucket_copy_the_registry_cannot_use_is_refused_as_unprovable_not_a_crash(published):
    """The bucket may hold what `aws s3 sync` or a hand put there; compared with it, publish says so."""
    result = plan({sid("1-1"): schema("1-1")}, {sid("1-0"): published})
    assert statuses(result) == {sid("1-0"): BUCKET_ONLY, sid("1-1"): REFUSED}
    assert f"the bucket's copy of {sid('1-0')} is not a schema the registry can use" in problems(result, "1-1")


def test_an_unchanged_schema_is_left_alone():
    result = plan({sid("1-0"): schema("1-0")}, {sid("1-0"): schema("1-0")})
    assert statuses(result) == {sid("1-0"): UNCHANGED} and not result.uploads


def test_force_publishes_a_refused_change_and_says_so():
    bucket = {sid("1-0"): schema("1-0")}
    result = plan({sid("1-0"): schema("1-0", extra=COUPON, required=("order_id", "coupon"))}, bucket,
                  force_reason="JIRA-1: no app sends 1-0 yet")
    [entry] = result.uploads
    assert entry.status == CHANGED and entry.forced == "JIRA-1: no app sends 1-0 yet"
    assert entry.note == "forced: JIRA-1: no app sends 1-0 yet"


def test_force_can_name_one_id():
    bucket = {sid("1-0"): schema("1-0")}
    project = {sid("1-0"): schema("1-0", extra=COUPON), sid("1-1"): schema("1-1")}
    result = plan(project, bucket, forced={sid("1-0"): "INC-7"})
    assert statuses(result) == {sid("1-0"): CHANGED, sid("1-1"): REFUSED}  # 1-1 rejects 1-0's coupon, not forced
    assert plan(project, bucket, forced={sid("1-0"): "INC-7", sid("1-1"): "INC-7"}).refused == []


def test_force_never_overrides_sequencing():
    result = plan({sid("1-2"): schema("1-2")}, {sid("1-0"): schema("1-0")}, force_reason="because")
    assert statuses(result)[sid("1-2")] == REFUSED


def test_a_forced_change_to_an_earlier_version_is_checked_against_later_ones():
    bucket = {sid("1-0"): schema("1-0"), sid("1-1"): schema("1-1")}
    result = plan({sid("1-0"): schema("1-0", extra=COUPON), sid("1-1"): schema("1-1")}, bucket)
    text = problems(result, "1-0")
    assert "immutable" in text
    assert f"{sid('1-1')} would not accept every event this version accepts: $.properties.coupon" in text


def test_prune_deletes_only_what_the_project_dropped():
    bucket = {sid("1-0"): schema("1-0"), sid("1-1"): schema("1-1")}
    result = plan({sid("1-1"): schema("1-1")}, bucket, prune=[sid("1-0")])
    assert statuses(result) == {sid("1-0"): PRUNE, sid("1-1"): UNCHANGED}


@pytest.mark.parametrize(("target", "message"), [
    (sid("1-1"), "cannot prune: it is still in the project"),
    ("shop/Gone/1-0.json", "cannot prune: there is no such schema in the bucket"),
])
def test_prune_refuses_ids_it_cannot_delete(target, message):
    bucket = {sid("1-0"): schema("1-0")}
    result = plan({sid("1-0"): schema("1-0"), sid("1-1"): schema("1-1")}, bucket, prune=[target])
    [entry] = result.refused
    assert entry.schema_id == target and entry.problems == (message,)
