"""The example Reflekt project follows Reflekt's own conventions (the checks `reflekt lint` makes), so it is a
project a user could have written, and publish accepts it; the version history of every example project passes
the publish gate."""

from __future__ import annotations

import json

import pytest

from helpers import EXAMPLE_SCHEMAS, REPO
from reflekt_registry.tools.plan import NEW, plan
from reflekt_registry.tools.publish import check_file, find_schemas

SCHEMAS = find_schemas(EXAMPLE_SCHEMAS)
# Reflekt's self block (its meta-schema requires these) and its MAJOR-MINOR version format.
SELF_FIELDS = {"vendor", "name", "format", "version", "metadata"}


def walk_properties(schema: dict, where: str = "$"):
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}.{name}", prop
        yield from walk_properties(prop, f"{where}.{name}")
        if isinstance(prop.get("items"), dict):
            yield from walk_properties(prop["items"], f"{where}.{name}[]")


def test_the_project_has_a_schema_per_call_type():
    """Track events, page, screen, identify and group: every kind the registry validates has an example."""
    names = {json.loads(path.read_text())["self"]["name"] for path in SCHEMAS}
    assert {"Identify", "Group", "Page Viewed", "Screen Viewed", "Test Event"} <= names


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.relative_to(EXAMPLE_SCHEMAS).as_posix())
def test_each_schema_follows_reflekt_conventions(path):
    """$id is the path; self names the event after its folder and the version after its file; every property is
    described and typed; schema_id is a typed const of the $id."""
    schema = json.loads(path.read_text())
    schema_id = path.relative_to(EXAMPLE_SCHEMAS).as_posix()
    assert schema["$id"] == schema_id
    assert SELF_FIELDS <= schema["self"].keys() and schema["self"]["format"] == "jsonschema"
    assert schema["self"]["name"].replace(" ", "_") == schema_id.split("/")[-2]
    assert schema["self"]["version"] == schema_id.split("/")[-1].removesuffix(".json")
    for where, prop in walk_properties(schema):
        assert prop.get("description") and prop.get("type"), f"{schema_id} {where} needs a description and a type"
    assert schema["properties"]["schema_id"] == {**schema["properties"]["schema_id"], "type": "string", "const": schema_id}
    assert check_file(path, EXAMPLE_SCHEMAS).problem is None


@pytest.mark.parametrize("schemas", sorted(REPO.glob("examples/*/schemas")), ids=lambda p: p.parent.name)
def test_each_example_history_passes_the_publish_gate(schemas):
    """Every MINOR accepts what the earlier MINORs of its MAJOR accept, with no gaps, as publish would judge it."""
    project = {path.relative_to(schemas).as_posix(): path.read_bytes() for path in find_schemas(schemas)}
    result = plan(project)
    assert [(e.schema_id, e.problems) for e in result.entries if e.status != NEW] == []
    assert any(name.endswith("-1.json") for name in project), "the example should show a MINOR bump"
