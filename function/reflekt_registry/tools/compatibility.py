"""Decides whether a new version of a schema accepts every event an older version accepted, and names what breaks.

A MINOR must keep that promise (see "Publishing schemas" in the README). The check is structural: it walks the old
and the new schema together and reports each change that can turn an event valid under the old one into an invalid
one, by JSON path into the schema and by rule. It is conservative: when it cannot prove a change safe (a new
pattern, a new `oneOf` branch, a keyword it does not model) it says so instead of guessing. Pure: two documents in,
a list of problems out.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import unquote

from ..schemas import dialect_of

# Keywords that describe a value without constraining it: they never change which events are valid. `self` is
# Reflekt's block (vendor, name, version, metadata); `$schema` and the root `$id` are compared separately.
ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment", "readOnly", "writeOnly", "self",
                         "$schema", "$id"})
# Keywords whose value is one subschema, a list of them, or a name → subschema map (draft-04/06/07).
SCHEMA_KEYWORDS = frozenset({"not", "if", "then", "else", "additionalItems", "additionalProperties", "contains",
                             "propertyNames"})
SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf"})
SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "definitions", "$defs"})
# Every keyword the checker models. Anything else that changes is refused unless explicitly allowed.
MODELLED = ANNOTATIONS | SCHEMA_KEYWORDS | SCHEMA_LIST_KEYWORDS | SCHEMA_MAP_KEYWORDS | frozenset({
    "$ref", "type", "enum", "const", "pattern", "format", "multipleOf", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
    "uniqueItems", "items", "required", "dependencies", "contentEncoding", "contentMediaType"})
# Keywords that only apply to values of one JSON type, so a change to them cannot matter if the old schema
# accepted no value of that type.
APPLIES_TO = {
    "string": ("pattern", "format", "contentEncoding", "contentMediaType", "minLength", "maxLength"),
    "number": ("multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    "array": ("items", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains"),
    "object": ("properties", "patternProperties", "additionalProperties", "required", "dependencies",
               "propertyNames", "minProperties", "maxProperties"),
}
KIND_TYPES = {"string": {"string"}, "number": {"number", "integer"}, "array": {"array"}, "object": {"object"}}
LOWER_BOUNDS = ("minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties")
# Reflekt's convention: the root `properties.schema_id` is a const of the schema's own $id, which differs in
# every version by design; each event names its own version. The check compares the rest of that property.
SCHEMA_ID_PROPERTY = "schema_id"
DEFAULT_DIALECT = "draft-07"  # a boolean schema names none; Reflekt writes draft-07
# A chain of $refs longer than this loops ({"$ref": "#"} inside itself, or two definitions naming each other).
MAX_REF_HOPS = 32
EMPTY: dict[str, Any] = {}


class Problem(NamedTuple):
    path: str  # JSONPath into the new schema, e.g. $.properties.step
    rule: str  # e.g. REQUIRED_PROPERTY_ADDED
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.rule}]"


def check(old: Any, new: Any, *, next_major: str = "a new MAJOR",
          allow_unknown_keywords: bool = False) -> list[Problem]:
    """Every way in which `new` may reject an event that `old` accepted; empty when `new` provably accepts them all.

    `next_major` (e.g. "2-0") is what the messages advise for a breaking change.
    """
    comparison = _Comparison(old, new, next_major, allow_unknown_keywords)
    if _dialect(old) != _dialect(new):
        comparison.report("$", "DRAFT_CHANGED", f"$schema {_dialect(old)} → {_dialect(new)}: the drafts validate "
                          f"differently; make the change {next_major}")
    comparison.compare(_without_own_id(old), _without_own_id(new), "$")
    return comparison.problems


def same_validation(old: Any, new: Any) -> bool:
    """Whether two schemas differ at most in annotations (descriptions, titles, examples, Reflekt's self block).
    `$schema` is stripped as an annotation, but the draft it names is not one: draft-06 ignores if/then/else."""
    return _dialect(old) == _dialect(new) and _canonical(strip_annotations(old)) == _canonical(strip_annotations(new))


def strip_annotations(schema: Any) -> Any:
    """The schema without annotation keywords, at every level where a subschema can sit."""
    if not isinstance(schema, dict):
        return schema
    stripped: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if (keyword in SCHEMA_MAP_KEYWORDS or keyword == "dependencies") and isinstance(value, dict):
            # dependencies: a name → subschema map (its array values come back unchanged)
            stripped[keyword] = {name: strip_annotations(sub) for name, sub in value.items()}
        elif keyword in SCHEMA_LIST_KEYWORDS or (keyword == "items" and isinstance(value, list)):
            stripped[keyword] = [strip_annotations(sub) for sub in value]
        elif keyword in SCHEMA_KEYWORDS or keyword == "items":
            stripped[keyword] = strip_annotations(value)
        else:
            stripped[keyword] = value
    return stripped


def _dialect(schema: Any) -> str:
    if not isinstance(schema, dict):
        return DEFAULT_DIALECT
    return dialect_of(schema) or str(schema.get("$schema"))


def _without_own_id(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    properties = schema.get("properties")
    prop = properties.get(SCHEMA_ID_PROPERTY) if isinstance(properties, dict) else None
    if not isinstance(prop, dict) or "$id" not in schema or prop.get("const") != schema["$id"]:
        return schema
    own = {key: value for key, value in prop.items() if key != "const"}
    return {**schema, "properties": {**schema["properties"], SCHEMA_ID_PROPERTY: own}}


def _canonical(value: Any) -> str:
    # JSON text keeps true, 1 and 1.0 apart, as JSON Schema's equality does for booleans.
    return json.dumps(value, sort_keys=True)


def _types(schema: dict) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _accepts_type(types: set[str] | None, json_type: str) -> bool:
    return types is None or json_type in types or (json_type == "integer" and "number" in types)


def _is_open(schema: Any) -> bool:
    """True for a schema that accepts every value: true, {} or only annotations."""
    return schema is True or (isinstance(schema, dict) and not strip_annotations(schema))


def _values(schema: dict) -> list[Any] | None:
    """The closed set of values `const` or `enum` allows, or None when there is none."""
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if isinstance(schema.get("enum"), list) else None


def _show(values: list[Any]) -> str:
    return ", ".join(json.dumps(v) for v in values)


class _Comparison:
    def __init__(self, old_root: Any, new_root: Any, next_major: str, allow_unknown: bool):
        self.roots = (old_root, new_root)
        self.major = next_major
        self.allow_unknown = allow_unknown
        self.problems: list[Problem] = []
        self.in_progress: set[tuple[int, int]] = set()

    def report(self, path: str, rule: str, message: str) -> None:
        self.problems.append(Problem(path, rule, message))

    def breaking(self, path: str, rule: str, what: str, alternative: str = "") -> None:
        self.report(path, rule, f"{what}; {alternative + ', or ' if alternative else ''}make the change {self.major}")

    def trial(self, old: Any, new: Any, path: str) -> list[Problem]:
        """The problems comparing `old` with `new` would find, without reporting them."""
        saved, self.problems = self.problems, []
        try:
            self.compare(old, new, path)
            return self.problems
        finally:
            self.problems = saved

    def resolve(self, schema: Any, side: int, path: str) -> Any:
        """Follows local $refs (draft-07 ignores a $ref's siblings); None, reported, when one cannot be followed."""
        hops = 0
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            # Only "#" and JSON pointers ("#/..."): a plain-name fragment ("#amount") names a subschema's own $id,
            # which reading it as the root would compare with the wrong schema.
            pointer = isinstance(ref, str) and (ref == "#" or ref.startswith("#/"))
            target = self.roots[side] if pointer else None
            for part in ref[2:].split("/") if target is not None and ref != "#" else ():
                # A URI fragment: percent-decoded first, then JSON Pointer's escapes.
                part = unquote(part).replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            hops += 1
            if target is None or hops > MAX_REF_HOPS:
                self.report(path, "UNRESOLVED_REF", f"$ref {ref!r} cannot be followed inside the schema, so "
                            "compatibility cannot be proved")
                return None
            schema = target
        return schema

    def compare(self, old: Any, new: Any, path: str) -> None:
        old, new = self.resolve(old, 0, path), self.resolve(new, 1, path)
        if old is None or new is None or old is False or _is_open(new):
            return
        if new is False:
            self.breaking(path, "SCHEMA_FALSE", "now rejects every value")
            return
        old = EMPTY if old is True else old
        # A recursive schema meets a pair it is still comparing: assume it holds there (no event is infinite).
        pair = (id(old), id(new))
        if pair in self.in_progress:
            return
        self.in_progress.add(pair)
        try:
            self.keywords(old, new, path)
        finally:
            self.in_progress.discard(pair)

    def keywords(self, old: dict, new: dict, path: str) -> None:
        self.unknown_keywords(old, new, path)
        self.type(old, new, path)
        self.values(old, new, path)
        types = _types(old)
        relevant = {kind for kind, names in KIND_TYPES.items() if types is None or names & types}
        if "string" in relevant:
            self.exact_keyword(old, new, path, "pattern", "every string the old pattern matched may not match the "
                               "new one")
            self.exact_keyword(old, new, path, "format", "the registry enforces formats")
            for keyword in ("contentEncoding", "contentMediaType"):
                self.exact_keyword(old, new, path, keyword, "the registry's validator enforces it (base64, JSON)")
        if "number" in relevant:
            self.number_bounds(old, new, path)
        for kind in relevant & {"string", "array", "object"}:
            self.size_bounds(old, new, path, kind)
        if "array" in relevant:
            self.arrays(old, new, path)
        if "object" in relevant:
            self.objects(old, new, path)
        self.combinators(old, new, path)

    def unknown_keywords(self, old: dict, new: dict, path: str) -> None:
        if self.allow_unknown:
            return
        for keyword in sorted((old.keys() | new.keys()) - MODELLED):
            if _canonical(old.get(keyword)) != _canonical(new.get(keyword)):
                self.report(f"{path}.{keyword}", "UNKNOWN_KEYWORD", f"cannot prove compatible: the checker does not "
                            f"model {keyword!r}; publish with --allow-unknown-keywords if it is only an annotation")

    def type(self, old: dict, new: dict, path: str) -> None:
        old_types, new_types = _types(old), _types(new)
        if new_types is None:
            return
        if old_types is None:
            values = _values(old)
            if values is None or not all(_accepts_type(new_types, _json_type(v)) for v in values):
                self.breaking(path, "TYPE_ADDED", f"type {sorted(new_types)} added where any type was accepted, so "
                              "old events with other types fail")
            return
        lost = sorted(t for t in old_types if not _accepts_type(new_types, t))
        if lost:
            self.breaking(path, "TYPE_NARROWED", f"type {sorted(old_types)} → {sorted(new_types)}: {', '.join(lost)} "
                          "values accepted before are now rejected")

    def values(self, old: dict, new: dict, path: str) -> None:
        allowed = _values(new)
        if allowed is None:
            return
        before = _values(old)
        rule = "CONST_CHANGED" if "const" in new else "ENUM_NARROWED"
        if before is None:
            self.breaking(path, rule, f"{'const' if 'const' in new else 'enum'} {_show(allowed)} added where other "
                          "values were accepted")
            return
        kept = {_canonical(v) for v in allowed}
        lost = [v for v in before if _canonical(v) not in kept]
        if lost:
            self.breaking(path, rule, f"{_show(lost)} accepted before, now rejected")

    def exact_keyword(self, old: dict, new: dict, path: str, keyword: str, why: str) -> None:
        if keyword not in new or old.get(keyword) == new[keyword]:
            return
        change = "ADDED" if keyword not in old else "CHANGED"
        shown = f"{json.dumps(old[keyword])} → " if keyword in old else ""
        self.breaking(f"{path}.{keyword}", f"{_snake(keyword)}_{change}",
                      f"{keyword} {shown}{json.dumps(new[keyword])}: {why}")

    def number_bounds(self, old: dict, new: dict, path: str) -> None:
        for side in ("minimum", "maximum"):
            before, after = _bound(old, side), _bound(new, side)
            if after is None:
                continue
            further = before is not None and (after[0] < before[0] if side == "minimum" else after[0] > before[0])
            as_far = before is not None and after[0] == before[0] and (before[1] or not after[1])
            if not (further or as_far):
                self.tightened(path, side, _show_bound(before), _show_bound(after))
        if "multipleOf" in new and old.get("multipleOf") != new["multipleOf"]:
            if not _divides(new["multipleOf"], old.get("multipleOf")):
                self.tightened(path, "multipleOf", old.get("multipleOf"), new["multipleOf"])

    def size_bounds(self, old: dict, new: dict, path: str, kind: str) -> None:
        for keyword in (k for k in LOWER_BOUNDS + UPPER_BOUNDS if k in APPLIES_TO[kind] and k in new):
            before, after = old.get(keyword), new[keyword]
            lower = keyword in LOWER_BOUNDS
            if before is None and lower and after == 0:
                continue
            if before is None or (after > before if lower else after < before):
                self.tightened(path, keyword, before, after)

    def tightened(self, path: str, keyword: str, before: Any, after: Any) -> None:
        shown = "none" if before is None else before
        self.breaking(f"{path}.{keyword}", f"{_snake(keyword)}_TIGHTENED", f"{keyword} {shown} → {after}: values "
                      "allowed before are now rejected")

    def arrays(self, old: dict, new: dict, path: str) -> None:
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self.breaking(f"{path}.uniqueItems", "UNIQUE_ITEMS_ADDED", "arrays with repeated items are now rejected")
        if "contains" in new:
            if "contains" in old:
                self.compare(old["contains"], new["contains"], f"{path}.contains")
            else:
                self.breaking(f"{path}.contains", "CONTAINS_ADDED", "arrays without a matching item are now rejected")
        positions = max(len(s["items"]) if isinstance(s.get("items"), list) else 0 for s in (old, new))
        for index in range(positions):
            self.compare(_item(old, index), _item(new, index), f"{path}.items[{index}]")
        where = "additionalItems" if isinstance(new.get("items"), list) else "items"
        self.compare(_item(old, positions), _item(new, positions), f"{path}.{where}")

    def objects(self, old: dict, new: dict, path: str) -> None:
        old_props, new_props = old.get("properties", EMPTY), new.get("properties", EMPTY)
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name in sorted(new_required - old_required):
            rule, detail = (("REQUIRED_ADDED", f"{name} was optional and is now required, so old events without it "
                             "fail") if name in old_props else ("REQUIRED_PROPERTY_ADDED", "new required property"))
            self.report(f"{path}.properties.{name}", rule, f"{detail}; make the change {self.major}, or keep {name} "
                        "optional")
        for name in sorted(old_props.keys() | new_props.keys()):
            where = f"{path}.properties.{name}"
            found = len(self.problems)
            self.property(old, new, name, where)
            dropped = name not in new_props and name in old_required and name not in new_required
            if dropped and len(self.problems) == found:
                self.breaking(where, "REQUIRED_PROPERTY_REMOVED", "required property removed; consumers rely on it "
                              "(Reflekt counts this as MAJOR)", f"keep {name}")
        self.pattern_properties(old, new, path)
        before, after = old.get("additionalProperties", True), new.get("additionalProperties", True)
        if after is False and before is not False:
            self.breaking(f"{path}.additionalProperties", "OBJECT_CLOSED", "old events with properties it does not "
                          "declare are now rejected")
        else:
            self.compare(before, after, f"{path}.additionalProperties")
        if "propertyNames" in new:
            self.compare(old.get("propertyNames", True), new["propertyNames"], f"{path}.propertyNames")
        self.dependencies(old, new, path)

    def property(self, old: dict, new: dict, name: str, where: str) -> None:
        """Every value the old schema accepted for `name` must pass every constraint the new one puts on it."""
        before, after = _constraints(old, name), _constraints(new, name)
        if name not in new.get("properties", EMPTY) and any(s is False for s in after):
            if not any(s is False for s in before):
                self.breaking(where, "PROPERTY_REMOVED_FROM_CLOSED_OBJECT", f"removed from an object that allows no "
                              f"other property, so old events that send {name} fail",
                              f"keep {name} (say it is deprecated in its description)")
            return
        if name not in old.get("properties", EMPTY) and before == [old.get("additionalProperties", True)]:
            if _is_open(before[0]) and not all(_is_open(s) for s in after):
                self.breaking(where, "OPTIONAL_PROPERTY_ADDED_TO_OPEN_OBJECT", f"added to an object that allowed any "
                              f"other property, so old events may already send {name} with another value",
                              f"give {name} no constraints")
                return
        for constraint in after:
            found = [self.trial(b, constraint, where) for b in before]
            if all(found):
                self.problems.extend(found[0])

    def pattern_properties(self, old: dict, new: dict, path: str) -> None:
        old_patterns, new_patterns = old.get("patternProperties", EMPTY), new.get("patternProperties", EMPTY)
        for pattern in sorted(old_patterns.keys() | new_patterns.keys()):
            where = f"{path}.patternProperties.{pattern}"
            if pattern in old_patterns and pattern in new_patterns:
                self.compare(old_patterns[pattern], new_patterns[pattern], where)
            elif pattern in new_patterns and not old_patterns:
                self.compare(old.get("additionalProperties", True), new_patterns[pattern], where)
            elif pattern in old_patterns and not new_patterns:
                self.compare(old_patterns[pattern], new.get("additionalProperties", True), where)
            else:
                self.breaking(where, "PATTERN_PROPERTIES_CHANGED", "the patterns changed, so which properties each "
                              "covers cannot be compared")

    def dependencies(self, old: dict, new: dict, path: str) -> None:
        before = old.get("dependencies", EMPTY)
        for name, after in new.get("dependencies", EMPTY).items():
            where = f"{path}.dependencies.{name}"
            if isinstance(after, list):
                if not (isinstance(before.get(name), list) and set(after) <= set(before[name])):
                    self.breaking(where, "DEPENDENCY_ADDED", f"objects with {name} must now also carry "
                                  f"{', '.join(after)}")
            elif name in before and not isinstance(before[name], list):
                self.compare(before[name], after, where)
            else:
                self.breaking(where, "DEPENDENCY_ADDED", f"objects with {name} must now match a new schema")

    def combinators(self, old: dict, new: dict, path: str) -> None:
        for index, part in enumerate(new.get("allOf", ())):
            self.compare(_part(old, "allOf", index, part), part, f"{path}.allOf[{index}]")
        if "anyOf" in new:
            self.any_of(old, new, path)
        for keyword in ("oneOf", "not", "if", "then", "else"):
            if keyword in new and not same_validation(old.get(keyword), new[keyword]):
                self.breaking(f"{path}.{keyword}", "COMBINATOR_CHANGED", f"{keyword} added or changed: cannot prove "
                              "that old events still match")

    def any_of(self, old: dict, new: dict, path: str) -> None:
        branches = old.get("anyOf")
        if branches is None:
            self.breaking(f"{path}.anyOf", "COMBINATOR_CHANGED", "anyOf added: old events may match none of its "
                          "branches")
            return
        for index, branch in enumerate(branches):
            if all(self.trial(branch, b, f"{path}.anyOf[{index}]") for b in new["anyOf"]):
                self.breaking(f"{path}.anyOf", "COMBINATOR_CHANGED", f"old branch {index} is accepted by no new "
                              "branch")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def _constraints(schema: dict, name: str) -> list[Any]:
    """The subschemas that judge a property called `name`: its declaration and matching patterns, or else the
    schema for additional properties."""
    found = [sub for pattern, sub in schema.get("patternProperties", EMPTY).items() if re.search(pattern, name)]
    if name in schema.get("properties", EMPTY):
        return [schema["properties"][name], *found]
    return found or [schema.get("additionalProperties", True)]


def _item(schema: dict, index: int) -> Any:
    items = schema.get("items", True)
    if isinstance(items, list):
        return items[index] if index < len(items) else schema.get("additionalItems", True)
    return items


def _part(old: dict, keyword: str, index: int, part: Any) -> Any:
    """The old counterpart of a new allOf part: an equal one anywhere, else the one at the same place, else the
    whole old schema (the part must then accept everything the old schema accepted)."""
    parts = old.get(keyword, ())
    for candidate in parts:
        if same_validation(candidate, part):
            return candidate
    return parts[index] if index < len(parts) else {k: v for k, v in old.items() if k != keyword}


def _bound(schema: dict, side: str) -> tuple[Any, bool] | None:
    """The tightest (value, exclusive) lower or upper bound, reading draft-04's boolean exclusives too."""
    exclusive_key = "exclusiveMinimum" if side == "minimum" else "exclusiveMaximum"
    bounds = []
    exclusive = schema.get(exclusive_key)
    if side in schema:
        bounds.append((schema[side], exclusive is True))
    if not isinstance(exclusive, bool) and exclusive is not None:
        bounds.append((exclusive, True))
    if not bounds:
        return None
    pick = max if side == "minimum" else min
    value = pick(b[0] for b in bounds)
    return value, any(b[1] for b in bounds if b[0] == value)


def _show_bound(bound: tuple[Any, bool] | None) -> str:
    return "none" if bound is None else f"{bound[0]}{' (exclusive)' if bound[1] else ''}"


def _divides(divisor: Any, multiple: Any) -> bool:
    """Whether every multiple of `multiple` is a multiple of `divisor`, in exact decimals (0.1 divides 0.3)."""
    if multiple is None:
        return False
    try:
        quotient = Decimal(str(multiple)) / Decimal(str(divisor))
    except (InvalidOperation, ZeroDivisionError):
        return False
    return quotient == quotient.to_integral_value()


def _snake(keyword: str) -> str:
    return "".join(f"_{c}" if c.isupper() else c.upper() for c in keyword)
