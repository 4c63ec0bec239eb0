"""`compatibility`: a change it calls compatible never rejects an event the old schema accepted, and every breaking
change is named by path and rule.

A case per rule of the table in the README ("Publishing schemas"), then properties checked with Hypothesis: events
generated as valid under an old schema (hypothesis-jsonschema) must stay valid under any new schema the checker
accepts, with fastjsonschema, the registry's own validator, as the judge.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from reflekt_registry.tools.compatibility import check, same_validation, strip_annotations

DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), closed: bool = True, **more: Any) -> dict:
    schema = {"type": "object", "properties": properties, "required": list(required), **more}
    if closed:
        schema["additionalProperties"] = False
    return schema


STEP = {"type": "integer", "minimum": 1}
BASE = obj({"name": {"type": "string"}, "step": STEP}, required=("name",))
OPEN = obj({"name": {"type": "string"}, "step": STEP}, required=("name",), closed=False)


def changed(base: dict, change) -> dict:
    new = copy.deepcopy(base)
    change(new)
    return new


def prop(name: str, **values: Any):
    return lambda s: s["properties"][name].update(values)


def drop(name: str, *keywords: str):
    return lambda s: [s["properties"][name].pop(k) for k in keywords]


def items_schema(items: Any, **more: Any) -> dict:
    return obj({"list": {"type": "array", "items": items, **more}})


# (case id, old, new, the rule expected, or None when the change is compatible)
CASES = [
    ("1-optional-added-to-closed", BASE, changed(BASE, lambda s: s["properties"].update(x={"type": "string"})), None),
    ("2-optional-added-to-open", OPEN, changed(OPEN, lambda s: s["properties"].update(x={"type": "string"})),
     "OPTIONAL_PROPERTY_ADDED_TO_OPEN_OBJECT"),
    ("2-unconstrained-added-to-open", OPEN, changed(OPEN, lambda s: s["properties"].update(x={"description": "x"})),
     None),
    ("3-added-covered-by-additional-schema", obj({}, closed=False, additionalProperties={"type": "integer"}),
     obj({"x": {"type": "number"}}, closed=False, additionalProperties={"type": "integer"}), None),
    ("3-added-not-covered-by-additional-schema", obj({}, closed=False, additionalProperties={"type": "integer"}),
     obj({"x": {"type": "string"}}, closed=False, additionalProperties={"type": "integer"}), "TYPE_NARROWED"),
    ("4-required-added", BASE, changed(BASE, lambda s: (s["properties"].update(x={"type": "string"}),
                                                       s["required"].append("x"))), "REQUIRED_PROPERTY_ADDED"),
    ("4-required-with-default-added", BASE, changed(BASE, lambda s: (
        s["properties"].update(x={"type": "string", "default": "a"}), s["required"].append("x"))),
     "REQUIRED_PROPERTY_ADDED"),
    ("5-optional-removed-from-closed", BASE, changed(BASE, lambda s: s["properties"].pop("step")),
     "PROPERTY_REMOVED_FROM_CLOSED_OBJECT"),
    ("6-required-removed-from-open", OPEN, changed(OPEN, lambda s: (s["properties"].pop("name"), s["required"].clear())),
     "REQUIRED_PROPERTY_REMOVED"),
    ("7-optional-removed-from-open", OPEN, changed(OPEN, lambda s: s["properties"].pop("step")), None),
    ("8-renamed-in-closed", BASE, changed(BASE, lambda s: s["properties"].update(steps=s["properties"].pop("step"))),
     "PROPERTY_REMOVED_FROM_CLOSED_OBJECT"),
    ("9-optional-made-required", BASE, changed(BASE, lambda s: s["required"].append("step")), "REQUIRED_ADDED"),
    ("9-undeclared-name-required", OPEN, changed(OPEN, lambda s: s["required"].append("ghost")),
     "REQUIRED_PROPERTY_ADDED"),
    ("10-required-made-optional", BASE, changed(BASE, lambda s: s["required"].clear()), None),
    ("11-integer-widened-to-number", BASE, changed(BASE, prop("step", type="number")), None),
    ("11-null-added-to-type", BASE, changed(BASE, prop("name", type=["string", "null"])), None),
    ("11-type-removed", BASE, changed(BASE, drop("name", "type")), None),
    ("12-number-narrowed-to-integer", changed(BASE, prop("step", type="number")), BASE, "TYPE_NARROWED"),
    ("12-null-dropped", changed(BASE, prop("name", type=["string", "null"])), BASE, "TYPE_NARROWED"),
    ("12-type-changed", BASE, changed(BASE, prop("name", type="integer")), "TYPE_NARROWED"),
    ("12-type-added", changed(BASE, drop("name", "type")), BASE, "TYPE_ADDED"),
    ("13-enum-extended", changed(BASE, prop("name", enum=["a", "b"])), changed(BASE, prop("name", enum=["b", "a", "c"])),
     None),
    ("13-enum-removed", changed(BASE, prop("name", enum=["a", "b"])), BASE, None),
    ("14-enum-narrowed", changed(BASE, prop("name", enum=["a", "b"])), changed(BASE, prop("name", enum=["a"])),
     "ENUM_NARROWED"),
    ("14-enum-added", BASE, changed(BASE, prop("name", enum=["a"])), "ENUM_NARROWED"),
    ("15-const-removed", changed(BASE, prop("name", const="a")), BASE, None),
    ("15-const-to-enum-containing-it", changed(BASE, prop("name", const="a")), changed(BASE, prop("name", enum=["a", "b"])),
     None),
    ("16-const-added", BASE, changed(BASE, prop("name", const="a")), "CONST_CHANGED"),
    ("16-const-changed", changed(BASE, prop("name", const="a")), changed(BASE, prop("name", const="b")), "CONST_CHANGED"),
    ("17-pattern-removed", changed(BASE, prop("name", pattern="^a")), BASE, None),
    ("18-pattern-added", BASE, changed(BASE, prop("name", pattern="^a")), "PATTERN_ADDED"),
    ("18-pattern-changed", changed(BASE, prop("name", pattern="^a")), changed(BASE, prop("name", pattern="^a.*")),
     "PATTERN_CHANGED"),
    ("19-format-added", BASE, changed(BASE, prop("name", format="email")), "FORMAT_ADDED"),
    ("19-format-changed", changed(BASE, prop("name", format="date")), changed(BASE, prop("name", format="date-time")),
     "FORMAT_CHANGED"),
    ("20-format-removed", changed(BASE, prop("name", format="email")), BASE, None),
    ("19-content-encoding-added", BASE, changed(BASE, prop("name", contentEncoding="base64")), "CONTENT_ENCODING_ADDED"),
    ("21-minimum-lowered", BASE, changed(BASE, prop("step", minimum=0)), None),
    ("21-minimum-removed", BASE, changed(BASE, drop("step", "minimum")), None),
    ("21-maximum-raised", changed(BASE, prop("step", maximum=5)), changed(BASE, prop("step", maximum=6)), None),
    ("21-exclusive-to-inclusive", changed(BASE, prop("step", exclusiveMaximum=5)), changed(BASE, prop("step", maximum=5)),
     None),
    ("21-length-loosened", changed(BASE, prop("name", minLength=2, maxLength=4)),
     changed(BASE, prop("name", minLength=1, maxLength=5)), None),
    ("21-multiple-of-divisor", changed(BASE, prop("step", multipleOf=10)), changed(BASE, prop("step", multipleOf=5)),
     None),
    ("21-multiple-of-decimal-divisor", changed(BASE, prop("step", type="number", multipleOf=0.3)),
     changed(BASE, prop("step", type="number", multipleOf=0.1)), None),
    ("21-unique-items-removed", items_schema({"type": "string"}, uniqueItems=True), items_schema({"type": "string"}),
     None),
    ("22-minimum-raised", BASE, changed(BASE, prop("step", minimum=2)), "MINIMUM_TIGHTENED"),
    ("22-maximum-added", BASE, changed(BASE, prop("step", maximum=9)), "MAXIMUM_TIGHTENED"),
    ("22-inclusive-to-exclusive", changed(BASE, prop("step", maximum=5)), changed(BASE, prop("step", exclusiveMaximum=5)),
     "MAXIMUM_TIGHTENED"),
    ("22-max-length-added", BASE, changed(BASE, prop("name", maxLength=3)), "MAX_LENGTH_TIGHTENED"),
    ("22-min-length-raised", changed(BASE, prop("name", minLength=1)), changed(BASE, prop("name", minLength=2)),
     "MIN_LENGTH_TIGHTENED"),
    ("22-min-items-added", items_schema({"type": "string"}), items_schema({"type": "string"}, minItems=1),
     "MIN_ITEMS_TIGHTENED"),
    ("22-max-properties-added", OPEN, changed(OPEN, lambda s: s.update(maxProperties=3)), "MAX_PROPERTIES_TIGHTENED"),
    ("22-multiple-of-changed", changed(BASE, prop("step", multipleOf=5)), changed(BASE, prop("step", multipleOf=10)),
     "MULTIPLE_OF_TIGHTENED"),
    ("22-unique-items-added", items_schema({"type": "string"}), items_schema({"type": "string"}, uniqueItems=True),
     "UNIQUE_ITEMS_ADDED"),
    ("22-contains-added", items_schema({"type": "string"}), items_schema({"type": "string"}, contains={"const": "a"}),
     "CONTAINS_ADDED"),
    ("22-bound-on-another-type-is-moot", BASE, changed(BASE, prop("step", maxLength=3)), None),
    ("23-object-opened", BASE, changed(BASE, lambda s: s.pop("additionalProperties")), None),
    ("24-object-closed", OPEN, BASE, "OBJECT_CLOSED"),
    ("24-additional-schema-added", OPEN, changed(OPEN, lambda s: s.update(additionalProperties={"type": "string"})),
     "TYPE_ADDED"),
    ("25-additional-schema-widened", changed(OPEN, lambda s: s.update(additionalProperties={"type": "integer"})),
     changed(OPEN, lambda s: s.update(additionalProperties={"type": "number"})), None),
    ("25-additional-schema-narrowed", changed(OPEN, lambda s: s.update(additionalProperties={"type": "number"})),
     changed(OPEN, lambda s: s.update(additionalProperties={"type": "integer"})), "TYPE_NARROWED"),
    ("26-nested-required-added", obj({"cart": BASE}), obj({"cart": changed(BASE, lambda s: s["required"].append("step"))}),
     "REQUIRED_ADDED"),
    ("26-array-items-narrowed", items_schema({"type": "number"}), items_schema({"type": "integer"}), "TYPE_NARROWED"),
    ("26-array-items-widened", items_schema({"type": "integer"}), items_schema({"type": "number"}), None),
    ("26-tuple-item-added-when-closed", items_schema([{"type": "string"}], additionalItems=False),
     items_schema([{"type": "string"}, {"type": "integer"}], additionalItems=False), None),
    ("26-tuple-item-added-when-open", items_schema([{"type": "string"}]),
     items_schema([{"type": "string"}, {"type": "integer"}]), "TYPE_ADDED"),
    ("27-any-of-branch-added", changed(BASE, prop("name", anyOf=[{"type": "string"}])),
     changed(BASE, prop("name", anyOf=[{"type": "string"}, {"type": "null"}])), None),
    ("27-all-of-part-removed", changed(BASE, prop("name", allOf=[{"minLength": 1}])), BASE, None),
    ("27-not-removed", changed(BASE, prop("name", **{"not": {"const": ""}})), BASE, None),
    ("28-any-of-branch-removed", changed(BASE, prop("name", anyOf=[{"type": "string"}, {"type": "null"}])),
     changed(BASE, prop("name", anyOf=[{"type": "string"}])), "COMBINATOR_CHANGED"),
    ("28-all-of-part-added", BASE, changed(BASE, prop("name", allOf=[{"minLength": 1}])), "MIN_LENGTH_TIGHTENED"),
    ("28-one-of-added", BASE, changed(BASE, prop("name", oneOf=[{"minLength": 1}])), "COMBINATOR_CHANGED"),
    ("28-not-added", BASE, changed(BASE, prop("name", **{"not": {"const": ""}})), "COMBINATOR_CHANGED"),
    ("28-if-added", BASE, changed(BASE, lambda s: s.update({"if": {"required": ["step"]}, "then": {"required": ["name"]}})),
     "COMBINATOR_CHANGED"),
    ("28-dependency-added", BASE, changed(BASE, lambda s: s.update(dependencies={"step": ["name"]})), "DEPENDENCY_ADDED"),
    ("29-inline-moved-to-ref", BASE, changed(BASE, lambda s: (s.update(definitions={"step": STEP}),
                                                             s["properties"].update(step={"$ref": "#/definitions/step"}))),
     None),
    ("29-unused-definition-changed", changed(BASE, lambda s: s.update(definitions={"x": {"type": "string"}})),
     changed(BASE, lambda s: s.update(definitions={"x": {"type": "integer"}})), None),
    ("30-used-definition-narrowed", changed(BASE, lambda s: (s.update(definitions={"n": {"type": "number"}}),
                                                            s["properties"].update(step={"$ref": "#/definitions/n"}))),
     changed(BASE, lambda s: (s.update(definitions={"n": {"type": "integer"}}),
                              s["properties"].update(step={"$ref": "#/definitions/n"}))), "TYPE_NARROWED"),
    ("31-remote-ref", BASE, changed(BASE, lambda s: s["properties"].update(step={"$ref": "https://example.com/s.json"})),
     "UNRESOLVED_REF"),
    ("32-annotations-only", BASE, changed(BASE, lambda s: (s.update(title="T", description="D", examples=[{}],
                                                                    self={"metadata": {"owner": "x"}}),
                                                           prop("name", description="the name", default="x")(s))),
     None),
    ("33-draft-changed", {**BASE, "$schema": DRAFT_07}, {**BASE, "$schema": "http://json-schema.org/draft-04/schema#"},
     "DRAFT_CHANGED"),
    ("unknown-keyword-added", BASE, changed(BASE, prop("name", contentSchema={"type": "string"})), "UNKNOWN_KEYWORD"),
    ("false-subschema", BASE, changed(BASE, lambda s: s["properties"].update(step=False)), "SCHEMA_FALSE"),
]


@pytest.mark.parametrize(("old", "new", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule(old, new, rule):
    rules = {p.rule for p in check(old, new, next_major="2-0")}
    assert rules == ({rule} if rule else set()), [str(p) for p in check(old, new)]


COMPATIBLE = [c for c in CASES if c[3] is None]


@pytest.mark.parametrize(("old", "new"), [c[1:3] for c in COMPATIBLE], ids=[c[0] for c in COMPATIBLE])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_each_change_called_compatible_keeps_old_events_valid(old, new, data):
    event = data.draw(from_schema(old), label="event")
    # hypothesis-jsonschema makes float multiples in binary arithmetic; fastjsonschema judges them in decimal.
    assume(_valid(old, event))
    assert _valid(new, event), f"{event!r} is valid under the old schema, not under the new"


def test_a_problem_names_path_rule_and_fix():
    new = changed(BASE, lambda s: (s["properties"].update(x={"type": "string"}), s["required"].append("x")))
    [problem] = check(BASE, new, next_major="2-0")
    assert str(problem) == ("$.properties.x: new required property; make the change 2-0, or keep x optional "
                            "[REQUIRED_PROPERTY_ADDED]")


def test_nested_paths_are_full():
    old = obj({"products": items_schema(BASE)})
    new = obj({"products": items_schema(changed(BASE, prop("step", type="string")))})
    assert [p.path for p in check(old, new)] == ["$.properties.products.properties.list.items.properties.step"]


def test_every_problem_is_reported_not_just_the_first():
    new = changed(BASE, lambda s: (prop("name", maxLength=3)(s), prop("step", minimum=5)(s)))
    assert {p.rule for p in check(BASE, new)} == {"MAX_LENGTH_TIGHTENED", "MINIMUM_TIGHTENED"}


def test_unknown_keywords_pass_only_when_allowed():
    new = changed(BASE, prop("name", contentSchema={"type": "string"}))
    assert check(BASE, new, allow_unknown_keywords=True) == []


def test_a_recursive_schema_is_compared_without_looping():
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    assert check(tree, copy.deepcopy(tree)) == []
    narrowed = changed(tree, lambda s: s.update(required=["children"]))
    assert [p.rule for p in check(tree, narrowed)] == ["REQUIRED_ADDED"]


def test_a_ref_loop_is_reported_not_followed():
    looping = {"definitions": {"a": {"$ref": "#/definitions/a"}}, "properties": {"x": {"$ref": "#/definitions/a"}}}
    assert "UNRESOLVED_REF" in {p.rule for p in check(BASE, looping)}


def test_a_ref_to_a_named_anchor_is_not_read_as_the_root():
    """draft-06/07 let a subschema name itself with `$id: "#amount"`; fastjsonschema follows `$ref: "#amount"` to it,
    so a tightened anchor is a breaking change the checker must not call compatible."""
    def amount(**constraints: Any) -> dict:
        return obj({"amount": {"$ref": "#amount"}}, definitions={"amount": {"$id": "#amount", "type": "number",
                                                                            **constraints}})

    old, new = amount(), amount(maximum=5)
    assert _valid(old, {"amount": 10}) and not _valid(new, {"amount": 10})
    assert "UNRESOLVED_REF" in {p.rule for p in check(old, new)}


def test_a_percent_encoded_ref_is_followed():
    """A $ref's fragment is a URI fragment: "%25" is "%" in the definition's name."""
    def percent(kind: str) -> dict:
        return obj({"share": {"$ref": "#/definitions/share%25"}}, definitions={"share%": {"type": kind}})

    assert check(percent("number"), percent("number")) == []
    assert [p.rule for p in check(percent("number"), percent("integer"))] == ["TYPE_NARROWED"]


def test_the_schema_id_const_follows_each_version():
    """Reflekt's schema_id property is a const of the schema's own $id: it changes with every version by design."""
    def version(n: str) -> dict:
        return changed(BASE, lambda s: (s.update({"$id": f"a/E/1-{n}.json"}),
                                        s["properties"].update(schema_id={"type": "string", "const": f"a/E/1-{n}.json"})))

    assert check(version("0"), version("1")) == []
    other = changed(version("1"), lambda s: s["properties"]["schema_id"].update(const="a/E/9-9.json"))
    assert [p.rule for p in check(version("0"), other)] == ["CONST_CHANGED"]


def test_same_validation_sees_only_annotations():
    described = changed(BASE, lambda s: (s.update(description="new words", self={"version": "1-0"}),
                                         prop("name", title="Name")(s)))
    assert same_validation(BASE, described)
    assert not same_validation(BASE, changed(BASE, prop("name", maxLength=9)))
    # A property that happens to be called "description" is data, not an annotation.
    named = obj({"description": {"type": "string"}})
    assert strip_annotations(named)["properties"] == {"description": {"type": "string"}}
    assert not same_validation(named, obj({}))
    # $schema's spelling is an annotation; the draft it names is not.
    assert same_validation({**BASE, "$schema": DRAFT_07}, {**BASE, "$schema": "https://json-schema.org/draft-07/schema"})
    assert not same_validation({**BASE, "$schema": DRAFT_07}, {**BASE, "$schema": "http://json-schema.org/draft-06/schema#"})


# ---- properties -------------------------------------------------------------------------------------------------

NAMES = ("a", "b", "c")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "a", "ab", "b1"]))


def _scalar_schemas() -> st.SearchStrategy[dict]:
    string = st.fixed_dictionaries({"type": st.just("string")}, optional={
        "minLength": st.integers(0, 2), "maxLength": st.integers(2, 4), "pattern": st.sampled_from(["^a", "b", "^[a-z]*$"]),
    })
    date = st.just({"type": "string", "format": "date"})
    integer = st.fixed_dictionaries({"type": st.just("integer")}, optional={
        "minimum": st.integers(-3, 0), "maximum": st.integers(0, 3), "multipleOf": st.sampled_from([1, 2, 3]),
    })
    number = st.fixed_dictionaries({"type": st.sampled_from(["number", ["number", "null"]])}, optional={
        "exclusiveMinimum": st.integers(-3, 0), "maximum": st.integers(0, 3),
    })
    enum = st.lists(SCALARS, min_size=1, max_size=3, unique_by=json.dumps).map(lambda values: {"enum": values})
    const = SCALARS.map(lambda value: {"const": value})
    other = st.sampled_from([{"type": "boolean"}, {"type": "null"}, {}, {"type": ["string", "integer"]}])
    return st.one_of(string, date, integer, number, enum, const, other)


def _schemas() -> st.SearchStrategy[dict]:
    def containers(children: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
        array = st.builds(lambda items, extra: {"type": "array", "items": items, **extra}, children,
                          st.fixed_dictionaries({}, optional={"maxItems": st.integers(1, 3),
                                                              "uniqueItems": st.just(True)}))
        props = st.dictionaries(st.sampled_from(NAMES), children, max_size=3)
        objects = st.builds(
            lambda properties, required, extra: {"type": "object", "properties": properties,
                                                 "required": sorted(set(required) & set(properties)), **extra},
            props, st.lists(st.sampled_from(NAMES), unique=True),
            st.fixed_dictionaries({}, optional={"additionalProperties": st.sampled_from([False, True, {"type": "integer"}])}))
        return st.one_of(array, objects)

    return st.recursive(_scalar_schemas(), containers, max_leaves=6)


def _nodes(schema: dict) -> list[dict]:
    """Every subschema a change can land on: the schema, its properties and its items, at every depth."""
    found = [schema]
    for child in [*schema.get("properties", {}).values(), schema.get("items")]:
        if isinstance(child, dict):
            found.extend(_nodes(child))
    return found


def _changes(node: dict, draw) -> list:
    """The changes that apply to `node`, each a function that makes it; compatible ones and breaking ones."""
    changes = [lambda: node.update(description="described")]
    kind = node.get("type")
    if kind == "object":
        properties, required = node["properties"], node["required"]
        for name in NAMES:
            changes.append(lambda name=name: properties.update({name: draw(_scalar_schemas())}))
            if name not in required:
                changes.append(lambda name=name: (properties.update({name: draw(_scalar_schemas())}),
                                                  required.append(name)))
        for name in properties:
            changes.append(lambda name=name: (properties.pop(name), required.remove(name) if name in required else None))
            changes.append(lambda name=name: required.remove(name) if name in required else required.append(name))
        changes.append(lambda: node.update(additionalProperties=False))
        changes.append(lambda: node.pop("additionalProperties", None))
    if kind == "integer":
        changes.append(lambda: node.update(type="number"))
    if kind in ("number", ["number", "null"]):
        changes.append(lambda: node.update(type="integer"))
    if isinstance(kind, str):
        changes.append(lambda: node.update(type=[kind, "null"]))
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "maxItems", "multipleOf"):
        if keyword in node:
            changes.append(lambda k=keyword: node.pop(k))
            changes.append(lambda k=keyword: node.update({k: node[k] + 1}))
            changes.append(lambda k=keyword: node.update({k: max(1, node[k] - 1)}))
    if kind == "integer":
        changes.append(lambda: node.update(minimum=1))
    if kind == "string":
        changes.append(lambda: node.update(maxLength=1))
        if "format" not in node:
            changes.append(lambda: node.update(pattern=draw(st.sampled_from(["^a", "^[a-z]*$", "1$"]))))
        if "pattern" not in node:
            changes.append(lambda: node.update(format="date"))
    if "pattern" in node:
        changes.append(lambda: node.pop("pattern"))
    if "enum" in node:
        changes.append(lambda: node.update(enum=list({json.dumps(v): v for v in [*node["enum"], draw(SCALARS)]}.values())))
        if len(node["enum"]) > 1:
            changes.append(lambda: node.update(enum=node["enum"][1:]))
    if "const" in node:
        changes.append(lambda: node.update(const=draw(SCALARS)))
        changes.append(lambda: node.update(enum=[node.pop("const"), draw(SCALARS)]))
    if kind == "array":
        changes.append(lambda: node.update(uniqueItems=True))
        changes.append(lambda: node.update(minItems=1))
    return changes


def _mutate(schema: dict, draw) -> dict:
    """A copy of `schema` with one change somewhere in it; the change may or may not be compatible."""
    schema = copy.deepcopy(schema)
    node = draw(st.sampled_from(_nodes(schema)))
    draw(st.sampled_from(_changes(node, draw)))()
    return schema


def _valid(schema: dict, event: Any) -> bool:
    try:
        fastjsonschema.compile({"$schema": DRAFT_07, **schema})(event)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                    HealthCheck.data_too_large])


# Nested schemas exercise the walk; scalar ones reach each keyword's rules far more often per example.
SHAPES = {"nested": _schemas(), "scalar": _scalar_schemas()}


@pytest.mark.parametrize("shape", SHAPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_change_called_compatible_keeps_every_old_event_valid(shape, data):
    """Put the other way round: a change with a witness (an event valid under the old schema and invalid under the
    new) is never called compatible."""
    old = data.draw(SHAPES[shape], label="old")
    new = _mutate(old, data.draw)
    if check(old, new):
        return
    for _ in range(3):
        event = data.draw(from_schema(old), label="event")
        assert _valid(old, event), "the generator made an event the old schema rejects"
        assert _valid(new, event), f"called compatible, but {event!r} is valid under {old} and not under {new}"


@settings(max_examples=100, deadline=None)
@given(_schemas())
def test_every_schema_is_compatible_with_itself_and_its_annotated_copy(schema):
    assert check(schema, copy.deepcopy(schema)) == []
    described = {**schema, "description": "more words", "title": "T"}
    assert check(schema, described) == [] and same_validation(schema, described)
