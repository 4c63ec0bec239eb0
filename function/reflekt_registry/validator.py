"""Checks each event against the schema it names and annotates the ones that fail with every violation."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import fastjsonschema

from .controls import DEFAULT_POLICY, Policy
from .schemas import CompiledSchema, SchemaStore, is_valid_schema_id

# Where each call type carries the data its schema describes (Reflekt: identify/group schemas describe traits).
VALIDATED_FIELD = {"track": "properties", "page": "properties", "screen": "properties", "identify": "traits", "group": "traits"}
# Calls whose traits are optional: without any there is nothing to validate (as in Segment Protocols, RudderStack).
OPTIONAL_PAYLOAD = frozenset({"identify", "group"})
SCHEMA_ID_FIELD = "schema_id"
# The original registry's annotation: a list of strings, so existing warehouse columns keep working.
LEGACY_ERRORS_FIELD = "validation_errors"
# The structured annotation lives at context.<ANNOTATION_KEY>.
ANNOTATION_KEY = "reflekt"
# The keyword of the violation for a schema id that names no usable schema.
UNUSABLE_SCHEMA = "schema"


class Violation(NamedTuple):
    path: str  # JSONPath into the event, e.g. $.properties.products[0].price
    keyword: str  # the JSON Schema keyword that failed, or a registry keyword such as schema_id
    message: str


class Verdict(NamedTuple):
    schema_id: str | None
    violations: tuple[Violation, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def schema_known(self) -> bool:
        """Whether schema_id named a usable schema; a client can invent any number of ids that do not."""
        return self.schema_id is not None and all(v.keyword != UNUSABLE_SCHEMA for v in self.violations)


class Validator:
    def __init__(self, store: SchemaStore):
        self.store = store

    def check(self, event: dict[str, Any], policy: Policy = DEFAULT_POLICY) -> Verdict:
        """Judges one event on its own; raises only when the schema store cannot answer."""
        field = VALIDATED_FIELD.get(event["type"])
        if field is None:  # alias carries nothing a schema describes
            return Verdict(None)
        payload = event.get(field)
        if event["type"] in OPTIONAL_PAYLOAD and (payload is None or payload == {}):
            return Verdict(None)
        where = f"$.{field}"
        if not isinstance(payload, dict):
            return Verdict(None, (Violation(where, "type", f"{where} must be an object carrying {SCHEMA_ID_FIELD}"),))
        schema_id = payload.get(SCHEMA_ID_FIELD)
        id_path = f"{where}.{SCHEMA_ID_FIELD}"
        if schema_id is None:
            return Verdict(None, (Violation(id_path, "required", f"{id_path} is missing: name the $id of the event's schema"),))
        if not is_valid_schema_id(schema_id):
            shown = repr(schema_id)[:120]
            return Verdict(None, (Violation(id_path, SCHEMA_ID_FIELD, f"{id_path} {shown} is not a schema path like 'plan/Event_Name/1-0.json'"),))
        schema = self.store.get(schema_id)
        if not isinstance(schema, CompiledSchema):
            return Verdict(schema_id, (Violation(id_path, UNUSABLE_SCHEMA, schema.reason),))
        return Verdict(schema_id, _run(schema, payload, where))


def _run(schema: CompiledSchema, payload: dict[str, Any], where: str) -> tuple[Violation, ...]:
    try:
        schema.validate(payload)
    except fastjsonschema.JsonSchemaValuesException as e:
        return tuple(_violation(error, where) for error in e.errors)
    except fastjsonschema.JsonSchemaValueException as e:
        return (_violation(e, where),)
    except Exception as e:  # generated code can fail on pathological data (deep nesting); the event is judged, not the request
        return (Violation(where, "error", f"{where} could not be validated: {type(e).__name__}"),)
    return ()


def _violation(error: fastjsonschema.JsonSchemaValueException, where: str) -> Violation:
    # fastjsonschema names the value "data", "data.a" or "data.a[0].b"; rebase that on the event's own path.
    name = error.name or "data"
    path = where + name[len("data"):] if name.startswith("data") else where
    message = error.message.replace(name, path, 1) if name in error.message else f"{path}: {error.message}"
    return Violation(path, error.rule or "unknown", message)


def annotate(event: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    """Marks an invalid event in place: the legacy string list where its data is, and a structured record in
    context. Nothing else of the event changes, except a non-object properties/traits/context, which must be
    replaced to carry the annotation."""
    field = VALIDATED_FIELD.get(event["type"], "properties")
    payload = event.get(field)
    if not isinstance(payload, dict):
        payload = event[field] = {}
    payload[LEGACY_ERRORS_FIELD] = [v.message for v in verdict.violations]
    context = event.get("context")
    if not isinstance(context, dict):
        context = event["context"] = {}
    context[ANNOTATION_KEY] = {"schemaId": verdict.schema_id, "violations": [v._asdict() for v in verdict.violations]}
    return event


def partition(events: list[dict[str, Any]], verdicts: list[Verdict]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Valid events as they came; invalid ones annotated."""
    valid, invalid = [], []
    for event, verdict in zip(events, verdicts, strict=True):
        if verdict.valid:
            valid.append(event)
        else:
            invalid.append(annotate(event, verdict))
    return valid, invalid


# What a stand-in for an oversized event keeps: enough to find, count and join it, never its data.
KEPT_FIELDS = ("type", "event", "name", "category", "userId", "anonymousId", "groupId", "previousId", "messageId",
               "timestamp", "originalTimestamp", "sentAt")
KEPT_CONTEXT = ("library", "ip")
# Bounds that keep a stand-in far under 32 KB whatever the client sent: each kept value serialises to at most
# 300 bytes, so 14 fields, 2 context entries and 10 violations (3 values each, plus their message again in
# validation_errors) come to about 17 KB with their keys.
MAX_KEPT_BYTES = 300
MAX_KEPT_VIOLATIONS = 10


def shrink(event: dict[str, Any], size: int, limit: int) -> dict[str, Any]:
    """A small invalid stand-in for an event Segment would refuse for its size (a 400 for the whole batch)."""
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    prior = context.get(ANNOTATION_KEY) if isinstance(context.get(ANNOTATION_KEY), dict) else {}
    violations = [Violation("$", "maxSize", f"event is {size} bytes; Segment accepts at most {limit}, so its data was dropped")]
    earlier = prior.get("violations") if isinstance(prior.get("violations"), list) else []
    violations += [Violation(_clip(v.get("path")), _clip(v.get("keyword")), _clip(v.get("message")))
                   for v in earlier if isinstance(v, dict)]
    stand_in = {name: _clip(event[name]) for name in KEPT_FIELDS if name in event}
    stand_in["context"] = {name: _clip(context[name]) for name in KEPT_CONTEXT if name in context}
    return annotate(stand_in, Verdict(_clip(prior.get("schemaId")), tuple(violations[:MAX_KEPT_VIOLATIONS])))


def _clip(value: Any) -> Any:
    """The value itself if it serialises to at most MAX_KEPT_BYTES, else a string prefix of it that does."""
    if len(json.dumps(value)) <= MAX_KEPT_BYTES:
        return value
    text = (value if isinstance(value, str) else json.dumps(value))[:MAX_KEPT_BYTES]
    while len(json.dumps(text)) > MAX_KEPT_BYTES:  # escapes (\u00e9, \") take up to 12 bytes a character
        text = text[: len(text) // 2]
    return text
