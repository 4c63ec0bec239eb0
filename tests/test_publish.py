"""`publish`: a Reflekt project's schemas reach the (moto) bucket only when every one of them is usable, and a
published version only changes by a compatible MINOR, an annotation edit or an explicit, recorded override."""

from __future__ import annotations

import json
import shutil

import boto3
import pytest
from moto import mock_aws

from helpers import EXAMPLE_SCHEMAS, TEST_EVENT
from reflekt_registry.plans import index_key, read_index_document
from reflekt_registry.tools.publish import FORCED_METADATA_KEY, find_schemas, main
from reflekt_registry.tools.publish_plan import plan
from s3_support import BUCKET

ORDER_1_0 = "jaffle_shop/Order_Completed/1-0.json"
ORDER_1_1 = "jaffle_shop/Order_Completed/1-1.json"
SCHEMA_COUNT = len(find_schemas(EXAMPLE_SCHEMAS))


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(EXAMPLE_SCHEMAS, root)
    (root / ".reflekt" / "meta").mkdir(parents=True)
    (root / ".reflekt" / "meta" / "1-0.json").write_text('{"not": "an event schema"}')
    return root


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def keys(s3):
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_uploads_every_schema_at_its_id(project, bucket, capsys):
    assert main([str(project), "--bucket", BUCKET]) == 0
    assert f"schemas/{TEST_EVENT}" in keys(bucket)
    assert len(keys(bucket)) == SCHEMA_COUNT + 1  # the .reflekt meta-schema stays home; the index of names joins them
    assert f"uploaded {SCHEMA_COUNT} schemas" in capsys.readouterr().out


def _rewrite(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("breakage,reason", [
    (lambda d: d.update({"$id": "segment/demo/Other/1-0.json"}), "$id is 'segment/demo/Other/1-0.json' but the file is at"),
    (lambda d: d.update({"$schema": "https://json-schema.org/draft/2020-12/schema"}), "only draft-04, draft-06 and draft-07"),
    (lambda d: d["properties"]["test_property"].update({"type": "strin"}), "not valid JSON Schema draft-07 at properties/test_property/type"),
    (lambda d: d["properties"]["test_property"].update({"pattern": "("}), "pattern: '(' is not a 'regex'"),
    (lambda d: d["required"].append("ghost"), "cannot be compiled: data: items ['ghost'] are required but not allowed"),
    (lambda d: d["properties"].update({"r": {"$ref": "https://example.com/s.json"}}), "points outside the schema"),
], ids=["id-not-path", "draft-2020-12", "meta-schema", "bad-regex", "unsatisfiable", "remote-ref"])
def test_one_bad_schema_blocks_the_whole_upload_and_is_named(project, bucket, capsys, breakage, reason):
    _rewrite(project / TEST_EVENT, breakage)
    assert main([str(project), "--bucket", BUCKET]) == 1
    err = capsys.readouterr().err
    assert f"{project / TEST_EVENT}: " in err and reason in err
    assert "nothing was uploaded" in err
    assert keys(bucket) == []


def test_not_json_is_named(project, capsys):
    (project / TEST_EVENT).write_text("{oops")
    assert main([str(project), "--check"]) == 1
    assert "is not valid JSON" in capsys.readouterr().err


def test_check_uploads_nothing_and_needs_no_bucket(project, capsys):
    assert main([str(project), "--check"]) == 0
    assert capsys.readouterr().out.strip() == f"{SCHEMA_COUNT} schemas are good"


def test_empty_folder_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path), "--check"]) == 1
    assert "no schemas found" in capsys.readouterr().err


def body(s3, schema_id):
    return s3.get_object(Bucket=BUCKET, Key=f"schemas/{schema_id}")


@pytest.fixture
def published(project, bucket, capsys):
    """The example project, already in the bucket."""
    assert main([str(project), "--bucket", BUCKET]) == 0
    capsys.readouterr()
    return bucket


def test_publishing_again_uploads_nothing_unchanged(project, published, capsys):
    assert main([str(project), "--bucket", BUCKET]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"uploaded 0 schemas to s3://{BUCKET}/schemas/, {SCHEMA_COUNT} unchanged"


def _require_coupon(d):
    d["required"].append("coupon")


def test_changing_a_published_version_is_refused_and_leaves_it(project, published, capsys):
    before = body(published, ORDER_1_0)["Body"].read()
    _rewrite(project / ORDER_1_0, _require_coupon)
    assert main([str(project), "--bucket", BUCKET]) == 1
    err = capsys.readouterr().err
    assert f"{project / ORDER_1_0}: refused" in err
    assert "its content changed, but a published version is immutable" in err
    assert "$.properties.coupon: coupon was optional and is now required" in err
    assert f"1 of {SCHEMA_COUNT} schemas are refused; nothing was uploaded" in err
    assert body(published, ORDER_1_0)["Body"].read() == before


def test_force_publishes_the_change_and_records_why(project, published, capsys):
    _rewrite(project / ORDER_1_0, _require_coupon)
    assert main([str(project), "--bucket", BUCKET, "--force", "INC-42: every app sends coupon"]) == 0
    assert "warning: published despite" in capsys.readouterr().err
    stored = body(published, ORDER_1_0)
    assert json.loads(stored["Body"].read())["required"][-1] == "coupon"
    assert stored["Metadata"] == {FORCED_METADATA_KEY: "INC-42: every app sends coupon"}
    assert body(published, ORDER_1_1)["Metadata"] == {}  # unchanged, not rewritten


def test_force_id_records_its_own_reason(project, published, capsys):
    _rewrite(project / ORDER_1_0, _require_coupon)
    assert main([str(project), "--bucket", BUCKET, "--force-id", ORDER_1_0, "INC-43"]) == 0
    assert body(published, ORDER_1_0)["Metadata"] == {FORCED_METADATA_KEY: "INC-43"}


@pytest.mark.parametrize("reason", ["", "café", "x" * 1025, "two\nlines"], ids=["empty", "non-ascii", "long", "newline"])
@pytest.mark.parametrize("option", [["--force"], ["--force-id", ORDER_1_0]], ids=["force", "force-id"])
def test_a_force_reason_must_fit_in_object_metadata(project, capsys, reason, option):
    with pytest.raises(SystemExit) as exit_:
        main([str(project), "--bucket", BUCKET, *option, reason])
    assert exit_.value.code == 2 and "printable ASCII" in capsys.readouterr().err


@pytest.mark.parametrize("prefix", ["", "registry/", "schemas", "/schemas/"])
def test_a_prefix_that_is_no_folder_or_holds_the_index_is_refused(project, capsys, prefix):
    """Under "" or "registry/" the index itself would be read as a schema of the bucket's."""
    with pytest.raises(SystemExit) as exit_:
        main([str(project), "--plan", "--bucket", BUCKET, "--prefix", prefix])
    assert exit_.value.code == 2 and "--prefix" in capsys.readouterr().err


def test_an_annotation_edit_is_published(project, published, capsys):
    _rewrite(project / ORDER_1_0, lambda d: d.update(description="A clearer description."))
    assert main([str(project), "--bucket", BUCKET]) == 0
    assert json.loads(body(published, ORDER_1_0)["Body"].read())["description"] == "A clearer description."


def bump(project, schema_id, version, change=lambda d: None):
    """Adds the next version of a schema to the project: a copy with its ids updated, then `change`d."""
    new_id = f"{schema_id.rpartition('/')[0]}/{version}.json"
    document = json.loads((project / schema_id).read_text())
    document["$id"] = document["properties"]["schema_id"]["const"] = new_id
    document["self"]["version"] = version
    change(document)
    (project / new_id).write_text(json.dumps(document))
    return new_id


def test_a_new_minor_is_checked_against_the_bucket_not_just_the_project(project, published, capsys):
    """The team deleted 1-0 and 1-1 from its project; the bucket still serves them to old apps."""
    bump(project, ORDER_1_1, "1-2", lambda d: d["properties"].pop("coupon"))
    (project / ORDER_1_0).unlink()
    (project / ORDER_1_1).unlink()
    assert main([str(project), "--bucket", BUCKET]) == 1
    err = capsys.readouterr().err
    for earlier in (ORDER_1_0, ORDER_1_1):
        assert (f"does not accept every event {earlier} accepts: $.properties.coupon: removed from an object that "
                "allows no other property") in err
    assert "[PROPERTY_REMOVED_FROM_CLOSED_OBJECT]" in err


def test_publish_never_deletes_unless_told(project, published, capsys):
    (project / TEST_EVENT).unlink()
    assert main([str(project), "--bucket", BUCKET]) == 0
    assert f"schemas/{TEST_EVENT}" in keys(published)
    assert main([str(project), "--bucket", BUCKET, "--prune", TEST_EVENT]) == 0
    assert f"schemas/{TEST_EVENT}" not in keys(published)
    assert "pruned 1" in capsys.readouterr().out


def test_plan_shows_every_kind_of_change_and_exits_for_ci(project, published, capsys):
    (project / TEST_EVENT).unlink()
    _rewrite(project / ORDER_1_1, lambda d: d.update(description="Reworded."))
    cart = bump(project, "jaffle_shop/Cart_Viewed/1-0.json", "1-1", lambda d: d.update(description="Reworded."))
    page = bump(project, "jaffle_shop/Page_Viewed/1-0.json", "1-1", lambda d: (
        d["properties"].update(step={"type": "integer", "description": "Funnel step."}), d["required"].append("step")))
    assert main([str(project), "--plan", "--bucket", BUCKET]) == 1
    out = capsys.readouterr().out
    assert f"plan against s3://{BUCKET}/schemas/" in out
    assert f"  new          {cart}\n" in out
    assert f"  changed      {ORDER_1_1} (annotations only)" in out
    assert f"  unchanged    {ORDER_1_0}" in out
    assert f"  bucket only  {TEST_EVENT}" in out
    assert (f"  refused      {page}\n"
            f"                 does not accept every event jaffle_shop/Page_Viewed/1-0.json accepts: $.properties.step: "
            "new required property; make the change 2-0, or keep step optional [REQUIRED_PROPERTY_ADDED]") in out
    assert out.strip().endswith(f"1 new, 1 changed, {SCHEMA_COUNT - 2} unchanged, 1 refused, 1 bucket only")
    assert body(published, ORDER_1_1)["Body"].read() != (project / ORDER_1_1).read_bytes()  # a plan uploads nothing


def test_plan_exits_0_when_the_publish_would_go_ahead(project, published, capsys):
    _rewrite(project / ORDER_1_1, lambda d: d.update(description="Reworded."))
    assert main([str(project), "--plan", "--bucket", BUCKET]) == 0
    assert capsys.readouterr().out.strip().endswith(f"1 changed, {SCHEMA_COUNT - 1} unchanged")


def test_an_unreadable_bucket_is_exit_status_2(project, bucket, capsys):
    assert main([str(project), "--plan", "--bucket", "no-such-bucket"]) == 2
    assert "cannot read s3://no-such-bucket/schemas/" in capsys.readouterr().err


def test_check_compares_with_a_named_bucket(project, published, capsys):
    _rewrite(project / ORDER_1_0, _require_coupon)
    assert main([str(project), "--check"]) == 0  # offline, the project alone is consistent
    assert main([str(project), "--check", "--bucket", BUCKET]) == 1


def test_a_schema_written_by_someone_else_meanwhile_is_not_overwritten(project, bucket, capsys, monkeypatch):
    """Writes are conditional on what the plan saw: another publisher's 1-0, written after the bucket was read,
    stays."""
    from reflekt_registry.tools import publish

    def plan_then_race(*args, **kwargs):
        result = plan(*args, **kwargs)
        bucket.put_object(Bucket=BUCKET, Key=f"schemas/{ORDER_1_0}", Body=b'{"written": "meanwhile"}')
        return result

    monkeypatch.setattr(publish, "plan", plan_then_race)
    assert main([str(project), "--bucket", BUCKET]) == 2
    err = capsys.readouterr().err
    assert f"s3://{BUCKET}/schemas/{ORDER_1_0} changed since the bucket was read" in err
    assert f" of {SCHEMA_COUNT} schemas were uploaded before it" in err
    assert body(bucket, ORDER_1_0)["Body"].read() == b'{"written": "meanwhile"}'


def test_writes_the_index_of_names_including_schemas_synced_earlier(project, bucket, capsys):
    """Publish after `aws s3 sync`: the index names every schema under the prefix, so the store trusts it alone."""
    bucket.put_object(Bucket=BUCKET, Key="schemas/synced/Order_Refunded/1-0.json", Body=b"{}")
    assert main([str(project), "--bucket", BUCKET]) == 0
    entries = read_index_document(bucket.get_object(Bucket=BUCKET, Key=index_key("schemas/"))["Body"].read(), "schemas/")
    names = {entry.schema_id: entry.name for entry in entries}
    assert names[TEST_EVENT] == "Test Event" and names["synced/Order_Refunded/1-0.json"] == "Order Refunded"
    assert len(names) == SCHEMA_COUNT + 1
    assert f"indexed {SCHEMA_COUNT + 1} schemas by name in s3://{BUCKET}/{index_key('schemas/')}" in capsys.readouterr().out


def test_the_index_records_each_schemas_etag_as_a_get_of_it_answers(project, bucket):
    """The registry trusts these to skip a request per schema, so they must be exactly what S3 serves, for the
    schemas it uploaded and for those it found there."""
    bucket.put_object(Bucket=BUCKET, Key="schemas/synced/Order_Refunded/1-0.json", Body=b"{}")
    assert main([str(project), "--bucket", BUCKET]) == 0
    entries = read_index_document(bucket.get_object(Bucket=BUCKET, Key=index_key("schemas/"))["Body"].read(), "schemas/")
    assert len(entries) == SCHEMA_COUNT + 1
    for entry in entries:
        assert entry.etag == bucket.get_object(Bucket=BUCKET, Key=f"schemas/{entry.schema_id}")["ETag"]


def test_registries_under_two_prefixes_of_one_bucket_keep_an_index_each(project, bucket):
    """Staging and production schemas in one bucket: publishing one never overwrites the other's index."""
    for prefix in ("staging/", "production/"):
        assert main([str(project), "--bucket", BUCKET, "--prefix", prefix]) == 0
    for prefix in ("staging/", "production/"):
        body = bucket.get_object(Bucket=BUCKET, Key=index_key(prefix))["Body"].read()
        assert len(read_index_document(body, prefix)) == SCHEMA_COUNT


def test_check_writes_no_index(project, bucket):
    assert main([str(project), "--check"]) == 0
    assert index_key("schemas/") not in keys(bucket)
