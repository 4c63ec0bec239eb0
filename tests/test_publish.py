"""`publish`: a Reflekt project's schemas reach the bucket only when every one of them is usable."""

from __future__ import annotations

import json
import shutil

import boto3
import pytest
from moto import mock_aws

from helpers import EXAMPLE_SCHEMAS, TEST_EVENT
from reflekt_registry.plans import INDEX_KEY, read_index_document
from reflekt_registry.tools.publish import main
from s3_support import BUCKET


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
    assert len(keys(bucket)) == 7 + 1  # the .reflekt meta-schema stays home; the index of names joins them
    assert "uploaded 7 schemas" in capsys.readouterr().out


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
    assert capsys.readouterr().out.strip() == "7 schemas are good"


def test_empty_folder_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path), "--check"]) == 1
    assert "no schemas found" in capsys.readouterr().err


def test_writes_the_index_of_names_including_schemas_synced_earlier(project, bucket, capsys):
    """Publish after `aws s3 sync`: the index names every schema under the prefix, so the store trusts it alone."""
    bucket.put_object(Bucket=BUCKET, Key="schemas/synced/Order_Refunded/1-0.json", Body=b"{}")
    assert main([str(project), "--bucket", BUCKET]) == 0
    entries = read_index_document(bucket.get_object(Bucket=BUCKET, Key=INDEX_KEY)["Body"].read(), "schemas/")
    names = {entry.schema_id: entry.name for entry in entries}
    assert names[TEST_EVENT] == "Test Event" and names["synced/Order_Refunded/1-0.json"] == "Order Refunded"
    assert len(names) == 8
    assert f"indexed 8 schemas by name in s3://{BUCKET}/{INDEX_KEY}" in capsys.readouterr().out


def test_check_writes_no_index(project, bucket):
    assert main([str(project), "--check"]) == 0
    assert INDEX_KEY not in keys(bucket)
