"""The example Reflekt projects follow Reflekt's own conventions (the checks `reflekt lint` makes), so they are
projects a user could have written, and publish accepts them: the original registry's, whose schemas declare
schema_id, and a tracking plan as `reflekt pull` writes it, whose events are found by name. The version history of
each passes the publish gate."""

from __future__ import annotations

import json

import pytest

from helpers import EXAMPLE_SCHEMAS, REPO, TRACKING_PLAN_SCHEMAS
from reflekt_registry.tools.publish_plan import NEW, plan
from reflekt_registry.tools.publish import check_file, find_schemas

SCHEMAS = find_schemas(EXAMPLE_SCHEMAS)
PLAN_SCHEMAS = find_schemas(TRACKING_PLAN_SCHEMAS)
EVERY_SCHEMA = [(EXAMPLE_SCHEMAS, path) for path in SCHEMAS] + [(TRACKING_PLAN_SCHEMAS, path) for path in PLAN_SCHEMAS]
# Reflekt's self block (its meta-schema requires these) and its MAJOR-MINOR version format.
SELF_FIELDS = {"vendor", "name", "format", "version", "metadata"}


def walk_properties(schema: dict, where: str = "$"):
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}.{name}", prop
        yield from walk_properties(prop, f"{where}.{name}")
        if isinstance(prop.get("items"), dict):
            yield from walk_properties(prop["items"], f"{where}.{name}[]")


@pytest.mark.parametrize("paths,event", [(SCHEMAS, "Test Event"), (PLAN_SCHEMAS, "Order Completed")], ids=["project", "plan"])
def test_each_project_has_a_schema_per_call_type(paths, event):
    """Track events, page, screen, identify and group: every kind the registry validates has an example."""
    names = {json.loads(path.read_text())["self"]["name"] for path in paths}
    assert {"Identify", "Group", "Page Viewed", "Screen Viewed", event} <= names


def test_the_tracking_plan_has_minors_and_majors_of_one_event():
    assert sorted(p.name for p in (TRACKING_PLAN_SCHEMAS / "acme" / "Order_Completed").iterdir()) == ["1-0.json", "1-1.json", "2-0.json"]


@pytest.mark.parametrize("root,path", EVERY_SCHEMA, ids=lambda v: v.relative_to(v.parents[2]).as_posix() if v.suffix else v.parent.name)
def test_each_schema_follows_reflekt_conventions(root, path):
    """$id is the path; self names the event after its folder and the version after its file; every property is
    described and typed. The original project's schema_id is a typed const of the $id; the plan has none."""
    schema = json.loads(path.read_text())
    schema_id = path.relative_to(root).as_posix()
    assert schema["$id"] == schema_id
    assert SELF_FIELDS <= schema["self"].keys() and schema["self"]["format"] == "jsonschema"
    assert schema["self"]["name"].replace(" ", "_") == schema_id.split("/")[-2]
    assert schema["self"]["version"] == schema_id.split("/")[-1].removesuffix(".json")
    for where, prop in walk_properties(schema):
        assert prop.get("description") and prop.get("type"), f"{schema_id} {where} needs a description and a type"
    if root == EXAMPLE_SCHEMAS:
        assert schema["properties"]["schema_id"] == {**schema["properties"]["schema_id"], "type": "string", "const": schema_id}
    else:
        assert "schema_id" not in schema["properties"]
    assert check_file(path, root).problem is None


@pytest.mark.parametrize("schemas", sorted(REPO.glob("examples/*/schemas")), ids=lambda p: p.parent.name)
def test_each_example_history_passes_the_publish_gate(schemas):
    """Every MINOR accepts what the earlier MINORs of its MAJOR accept, with no gaps, as publish would judge it."""
    project = {path.relative_to(schemas).as_posix(): path.read_bytes() for path in find_schemas(schemas)}
    result = plan(project)
    assert [(e.schema_id, e.problems) for e in result.entries if e.status != NEW] == []
    assert any(name.endswith("-1.json") for name in project), "the example should show a MINOR bump"
