"""Judges each event against its schema, found by schema_id or by name within its plans, under its source's
controls, and marks what the registry decided in the event it forwards."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import fastjsonschema

from .controls import DEFAULT_POLICY, Controls, Policy
from .plans import CALL_SCHEMA_NAMES, Resolution, Unresolved, event_version_of
from .schemas import CompiledSchema, SchemaStore, UnusableSchema, is_valid_schema_id

# Where each call type carries the data its schema describes (Reflekt: identify/group schemas describe traits).
VALIDATED_FIELD = {"track": "properties", "page": "properties", "screen": "properties", "identify": "traits", "group": "traits"}
# Calls whose traits are optional: without any there is nothing to validate (as in Segment Protocols, RudderStack).
OPTIONAL_PAYLOAD = frozenset({"identify", "group"})
# Some Segment-compatible SDKs send identify traits in context.traits; they are read there when traits is absent.
CONTEXT_TRAITS = "traits"
SCHEMA_ID_FIELD = "schema_id"
# The original registry's annotation: a list of strings, so existing warehouse columns keep working.
LEGACY_ERRORS_FIELD = "validation_errors"
# The structured annotation lives at context.<ANNOTATION_KEY>.
ANNOTATION_KEY = "reflekt"
# The keyword of the violation for a schema id that names no usable schema.
UNUSABLE_SCHEMA = "schema"
# Where the common schema's violations are: it judges the whole event (its own schema's are deeper, or at the name).
WHOLE_EVENT = "$"
# Keywords of the registry's own findings about an event's name (Protocols calls the first Unplanned-Event).
UNPLANNED, AMBIGUOUS = "unplanned", "ambiguous"


class Violation(NamedTuple):
    path: str  # JSONPath into the event, e.g. $.properties.products[0].price
    keyword: str  # the JSON Schema keyword that failed, or a registry keyword such as schema_id
    message: str


class Verdict(NamedTuple):
    schema_id: str | None
    violations: tuple[Violation, ...] = ()
    allowed: bool = False  # its violations do not block it (controls "allow" or "omit"): it goes to the valid source
    resolution: Resolution | None = None  # the schema was chosen by the event's name: which version and why
    unplanned: bool = False  # no schema has its name in the source's plans
    omitted: tuple[str, ...] = ()  # names removed from its properties/traits before it was judged and forwarded

    @property
    def valid(self) -> bool:
        """Whether it conforms; where it goes is `blocked`."""
        return not self.violations

    @property
    def blocked(self) -> bool:
        """Whether it goes to the invalid source."""
        return bool(self.violations) and not self.allowed

    @property
    def noteworthy(self) -> bool:
        """Whether the registry decided something the event did not say itself, which context.reflekt records."""
        return bool(self.violations or self.resolution or self.unplanned or self.omitted)

    @property
    def schema_known(self) -> bool:
        """Whether it was judged against a usable schema; a client can invent any number of ids that name none.
        An unusable common schema says nothing about the event's own."""
        return self.schema_id is not None and all(v.keyword != UNUSABLE_SCHEMA or v.path == WHOLE_EVENT
                                                  for v in self.violations)


# What _locate finds for an event that a schema judges: that schema's id, the data it judges and the data's
# JSONPath, the JSONPath of what chose the schema (the schema_id field or the name), and how the name chose it
# (None for a schema_id). A plain tuple: one is made per event on the warm path, where a NamedTuple's constructor
# would add ~0.25 µs to each.
Target = tuple[str, dict[str, Any], str, str, Resolution | None]


class Validator:
    def __init__(self, store: SchemaStore):
        self.store = store

    def check(self, event: dict[str, Any], policy: Policy = DEFAULT_POLICY) -> Verdict:
        """Judges one event on its own under `policy`; raises only when the schema store cannot answer."""
        return self._judge(event, self._locate(event, policy), policy)

    def check_all(self, events: list[dict[str, Any]], policy: Policy = DEFAULT_POLICY) -> list[Verdict]:
        """Judges a request's events as `check` does, after fetching the schemas they need concurrently: a cold
        start waits for about one S3 round trip instead of one per schema."""
        located = [self._locate(event, policy) for event in events]
        needed = [target[0] for target in located if not isinstance(target, Verdict)]
        common = policy.controls.common_schema
        if common is not None and events and is_valid_schema_id(common):
            needed.append(common)
        self.store.prefetch(needed)
        return [self._judge(event, target, policy) for event, target in zip(events, located, strict=True)]

    def _judge(self, event: dict[str, Any], target: Target | Verdict, policy: Policy) -> Verdict:
        """The event's verdict: its own schema's (or the one _locate reached without it), then the common schema's."""
        if isinstance(target, Verdict):
            verdict = target
        else:
            schema_id, payload, where, id_path, resolution = target
            schema = self.store.get(schema_id)
            if isinstance(schema, CompiledSchema):
                verdict = _judge_data(schema, payload, where, policy.controls)._replace(resolution=resolution)
            else:
                verdict = Verdict(schema_id, (Violation(id_path, UNUSABLE_SCHEMA, schema.reason),), resolution=resolution)
        common = policy.controls.common_schema
        return verdict if common is None else self._judge_whole(event, verdict, common, policy.controls)

    def _locate(self, event: dict[str, Any], policy: Policy) -> Target | Verdict:
        """The schema that judges the event's data, or the verdict when none is needed or none can be found."""
        call_type = event["type"]
        if call_type not in VALIDATED_FIELD:  # alias carries nothing a schema describes
            return Verdict(None)
        payload, where = data_of(event)
        if call_type in OPTIONAL_PAYLOAD and (payload is None or payload == {}):
            return Verdict(None)
        if payload is None:  # Segment reads a track, page or screen without properties as one with none
            payload = {}
        if not isinstance(payload, dict):
            return Verdict(None, (Violation(where, "type", f"{where} must be an object"),))
        schema_id = payload.get(SCHEMA_ID_FIELD)
        if schema_id is not None:
            id_path = f"{where}.{SCHEMA_ID_FIELD}"
            if not is_valid_schema_id(schema_id):
                shown = repr(schema_id)[:120]
                return Verdict(None, (Violation(id_path, SCHEMA_ID_FIELD, f"{id_path} {shown} is not a schema path like 'plan/Event_Name/1-0.json'"),))
            return schema_id, payload, where, id_path, None
        id_path = "$.event" if call_type == "track" else "$.type"
        name = event.get("event") if call_type == "track" else CALL_SCHEMA_NAMES[call_type]
        found = self.store.index().resolve(name, event_version_of(event), policy.plans)
        if isinstance(found, Unresolved):
            return _unresolved(found, call_type, id_path, policy.controls)
        return found.schema_id, payload, where, id_path, found

    def _judge_whole(self, event: dict[str, Any], verdict: Verdict, common_id: str, controls: Controls) -> Verdict:
        """Adds the common schema's judgement of the whole event, as it will be forwarded."""
        schema = self.store.get(common_id) if is_valid_schema_id(common_id) else UnusableSchema(
            common_id, f"{common_id!r} is not a schema path like 'plan/Common/1-0.json'")
        if isinstance(schema, CompiledSchema):
            violations = _run(schema, without_omitted(event, verdict), WHOLE_EVENT)
        else:
            violations = (Violation(WHOLE_EVENT, UNUSABLE_SCHEMA, f"the common schema is unusable: {schema.reason}"),)
        if not violations:
            return verdict
        return verdict._replace(violations=verdict.violations + violations,
                                allowed=not verdict.blocked and controls.common_schema_violations == "allow")


def data_of(event: dict[str, Any]) -> tuple[Any, str]:
    """The data an event's schema describes, and its JSONPath."""
    field = VALIDATED_FIELD[event["type"]]
    context = event.get("context")
    if field == "traits" and event.get("traits") is None and isinstance(context, dict) and context.get(CONTEXT_TRAITS) is not None:
        return context[CONTEXT_TRAITS], f"$.context.{CONTEXT_TRAITS}"
    return event.get(field), f"$.{field}"


def _unresolved(found: Unresolved, call_type: str, name_path: str, controls: Controls) -> Verdict:
    if found.keyword == AMBIGUOUS:  # the configuration must choose: never forwarded as valid on a guess
        return Verdict(None, (Violation(name_path, AMBIGUOUS, found.message),))
    if call_type != "track":  # as in Protocols, only track events are unplanned: a page or identify without a schema passes
        return Verdict(None)
    if controls.unplanned_events == "allow":
        return Verdict(None, unplanned=True)
    return Verdict(None, (Violation(name_path, UNPLANNED, found.message),), unplanned=True)


def _judge_data(schema: CompiledSchema, payload: dict[str, Any], where: str, controls: Controls) -> Verdict:
    """Validates the data under the controls: what is omitted first, and whether violations block."""
    data = payload
    if SCHEMA_ID_FIELD in data and schema.declared is not None and SCHEMA_ID_FIELD not in schema.declared:
        data = _without(data, (SCHEMA_ID_FIELD,))  # routing metadata, not data: judged only by schemas that declare it
    omitted: tuple[str, ...] = ()
    if controls.unplanned_properties == "omit" and schema.declared is not None:
        omitted = tuple(name for name in data if name not in schema.declared)
        data = _without(data, omitted)
    violations = _run(schema, data, where)
    verdict = Verdict(schema.schema_id, violations, omitted=omitted)
    if not violations or controls.violations == "block":
        return verdict
    if controls.violations == "allow":
        return verdict._replace(allowed=True)
    offending = _offending(schema, violations, data, where)
    if offending is None or _run(schema, _without(data, offending), where):
        return verdict  # a violation of the whole object (a missing property), or what is left still fails
    return verdict._replace(allowed=True, omitted=omitted + offending)


def _offending(schema: CompiledSchema, violations: tuple[Violation, ...], data: dict[str, Any],
               where: str) -> tuple[str, ...] | None:
    """The top-level names whose values the violations are in; None when one is about the object itself, or is in
    one of several names that cannot be told apart (then the event is blocked whole rather than lose a good value)."""
    by_path = {f"{where}.{name}": name for name in data}
    names: dict[str, None] = {}
    for violation in violations:
        path = violation.path
        cuts = [i for i, c in enumerate(path) if c in ".[" and i > len(where)] + [len(path)]
        candidates = [by_path[path[:i]] for i in cuts if path[:i] in by_path]
        if len(candidates) > 1:
            # fastjsonschema names a value by joining keys with "." and indices with "[n]" (its `path` only splits
            # that name again), so "a.b" reads like b in a sibling "a", and "x[0]" like x's first item: the name is
            # the one whose removal takes the violation with it.
            candidates = [name for name in candidates if violation not in _run(schema, _without(data, (name,)), where)]
        if len(candidates) != 1:
            return None
        names[candidates[0]] = None
    return tuple(names)


def _without(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in names} if names else data


def without_omitted(event: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    """The event as it will be forwarded, without changing it: a copy only when something is omitted."""
    if not verdict.omitted:
        return event
    payload, where = data_of(event)
    kept = _without(payload, verdict.omitted)
    if where.startswith("$.context."):
        return {**event, "context": {**event["context"], CONTEXT_TRAITS: kept}}
    return {**event, where[2:]: kept}


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
    """Applies a verdict in place: removes what it omitted and records it in context. A blocked event also gets
    the legacy string list where its data is. Nothing else of the event changes, except a non-object
    properties/traits/context, which must be replaced to carry the annotation."""
    if verdict.omitted or verdict.blocked:
        field = VALIDATED_FIELD.get(event["type"], "properties")
        payload = data_of(event)[0] if event["type"] in VALIDATED_FIELD else event.get(field)
        for name in verdict.omitted:  # only ever names of an object's keys
            payload.pop(name, None)
        if verdict.blocked:
            if not isinstance(payload, dict):
                payload = event[field] = {}
            payload[LEGACY_ERRORS_FIELD] = [v.message for v in verdict.violations]
    context = event.get("context")
    if not isinstance(context, dict):
        context = event["context"] = {}
    context[ANNOTATION_KEY] = record(verdict)
    return event


def record(verdict: Verdict) -> dict[str, Any]:
    """context.reflekt: the schema used and every violation; how a schema was found by name; what was omitted."""
    annotation: dict[str, Any] = {"schemaId": verdict.schema_id, "violations": [v._asdict() for v in verdict.violations]}
    if verdict.resolution is not None:  # its version is in schemaId; why that version, only here
        annotation["versionReason"] = verdict.resolution.reason
    if verdict.unplanned:
        annotation["unplanned"] = True
    if verdict.omitted:
        annotation["omitted"] = list(verdict.omitted)
    if verdict.violations and not verdict.blocked:
        annotation["allowed"] = True
    return annotation


def partition(events: list[dict[str, Any]], verdicts: list[Verdict]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The one place that decides where events go: the invalid source for the blocked, the valid one for the rest.
    Events the registry decided something about are annotated on the way; the others go as they came."""
    valid, invalid = [], []
    for event, verdict in zip(events, verdicts, strict=True):
        if verdict.blocked:
            invalid.append(annotate(event, verdict))
        else:
            valid.append(annotate(event, verdict) if verdict.noteworthy else event)
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
