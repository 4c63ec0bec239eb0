"""Parses and checks the configuration document (plans, controls, sources) into typed values, naming the key at fault."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from .config import Settings
from .controls import COMMON_SCHEMA_VIOLATIONS, UNPLANNED_EVENTS, UNPLANNED_PROPERTIES, VIOLATIONS, Controls, Policy
from .errors import ConfigError
from .schemas import MAX_SCHEMA_ID_LENGTH, SCHEMA_ID_SEGMENT, is_valid_schema_id

# The only format so far; a document says which it is written in, so a later format can be told apart.
VERSION = 1
# 500 sources with 10 keys each come to about 400 KB; four times that is room, and a bound on what is parsed.
MAX_DOCUMENT_BYTES = 2 << 20
# A source's name is a folder name locally and a log field: short, plain, and the same on every file system.
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Segment write keys are 32 characters; a much longer value is a paste of something else.
MAX_WRITE_KEY_CHARS = 256
# A plan is a $id prefix: the same plain path segments a $id is made of.
PLAN = re.compile(rf"{SCHEMA_ID_SEGMENT}(?:/{SCHEMA_ID_SEGMENT})*/?")
# The name of the one source today's environment variables describe, when the document declares none; a declared
# source's name cannot hold parentheses, so it never clashes with this one.
ENVIRONMENT_SOURCE = "(environment)"
# How the environment's source is named in messages, since it has no key path in a document.
ENVIRONMENT_VARIABLES = "VALID_SEGMENT_WRITE_KEY, INVALID_SEGMENT_WRITE_KEY and REGISTRY_WRITE_KEYS"

# Keys shown bare in a key path; anything else is quoted, so a newline or a 10 KB key cannot garble a message.
PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")

DOCUMENT_KEYS = ("version", "plans", "controls", "sources", "invalid_write_key", "default_source")
SOURCE_KEYS = ("write_keys", "plans", "controls", "valid_write_key", "invalid_write_key")
CONTROL_KEYS = ("unplanned_events", "unplanned_properties", "violations", "common_schema")
COMMON_SCHEMA_KEYS = ("id", "violations")


class Source(NamedTuple):
    """Apps that send some write keys, the plans and controls their events are held to, and where they go."""

    name: str
    write_keys: tuple[str, ...]  # empty only for the local server's open source, which takes any key
    policy: Policy
    valid_write_key: str | None  # None: pass-through, each valid event goes on under the key it was sent with
    invalid_write_key: str | None  # None only where events are written to files instead of Segment

    def valid_key_for(self, sent_with: str) -> str:
        return self.valid_write_key or sent_with


class Document(NamedTuple):
    """The configuration in force: every source, and the one that takes keys no source lists."""

    sources: tuple[Source, ...]
    default_source: Source | None
    declared: bool  # whether the sources come from a document (False: from the environment variables)


class Environment(NamedTuple):
    """What the environment variables say: the single source they describe, if any, and where events go."""

    source: Source | None
    forwarding: bool  # to Segment; else, locally, to files
    local: bool  # the local server, where an empty allowlist takes any key


def environment(settings: Settings) -> Environment:
    """The environment's source: in Lambda only when its variables are set; locally always (open without keys)."""
    described = settings.valid_write_key is not None or bool(settings.allowed_write_keys) or settings.local
    source = Source(ENVIRONMENT_SOURCE, tuple(dict.fromkeys(settings.allowed_write_keys)), Policy(),
                    settings.valid_write_key, settings.invalid_write_key) if described else None
    return Environment(source, settings.forwards_to_segment, settings.local)


def from_environment(env: Environment, policy: Policy = Policy()) -> Document:
    """The zero-configuration document: the environment's source, held to `policy`; with no allowlist, the local
    server's open source takes any key."""
    if env.source is None:
        raise ConfigError(f"no source is configured: set {ENVIRONMENT_VARIABLES}, or declare sources in the "
                          "configuration document")
    if env.forwarding and env.source.invalid_write_key is None:
        raise ConfigError("events go to Segment, but VALID_SEGMENT_WRITE_KEY and INVALID_SEGMENT_WRITE_KEY are "
                          "unset: set them, or declare sources in the configuration document")
    if not env.local and not env.source.write_keys:
        raise ConfigError("REGISTRY_WRITE_KEYS is empty: list the write keys your SDKs send, comma-separated, or "
                          "declare sources in the configuration document")
    source = env.source._replace(policy=policy)
    return Document((source,), None if source.write_keys else source, declared=False)


def parse(raw: bytes, env: Environment) -> Document:
    """The document in `raw`; ConfigError names the key at fault (`sources.web.controls.violations: ...`)."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigError(f"the document is {len(raw)} bytes; at most {MAX_DOCUMENT_BYTES} are read")
    try:
        body = json.loads(raw, object_pairs_hook=_no_repeated_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ConfigError(f"the document is not JSON: {e}") from None
    top = _object(body, "", DOCUMENT_KEYS)
    if "version" not in top:
        raise ConfigError(f"version: required; set it to {VERSION}")
    if type(top["version"]) is not int or top["version"] != VERSION:  # neither true nor 1.0
        raise ConfigError(f"version: {_shown(top['version'])} is not a known version; expected {VERSION}")
    policy = Policy(parse_plans(top.get("plans", []), "plans"), _controls(top.get("controls", {}), "controls", Controls()))
    if "sources" not in top:
        for key in ("invalid_write_key", "default_source"):
            if key in top:
                raise ConfigError(f"{key}: only applies to the document's sources, and it declares none")
        return from_environment(env, policy)
    if env.source is not None and (env.source.write_keys or env.source.valid_write_key):
        raise ConfigError(f"sources: the document declares sources and the environment sets {ENVIRONMENT_VARIABLES} "
                          "too; move those keys into a source of the document and unset the variables")
    shared_invalid = _key(top["invalid_write_key"], "invalid_write_key") if "invalid_write_key" in top else None
    sources = _sources(top["sources"], policy, shared_invalid)
    _check_roles(sources, shared_invalid)
    default = None
    if "default_source" in top:
        name = top["default_source"]
        default = next((source for source in sources if source.name == name), None)
        if default is None:
            raise ConfigError(f"default_source: {_shown(name)} is not one of the sources "
                              f"({', '.join(_shown(s.name) for s in sources[:10])}{', …' if len(sources) > 10 else ''})")
    return Document(sources, default, declared=True)


def _sources(value: Any, policy: Policy, shared_invalid: str | None) -> tuple[Source, ...]:
    declared = _object(value, "sources", None)
    if not declared:
        raise ConfigError("sources: declare at least one source, or leave sources out to use the environment's")
    sources, folded = [], {}
    for name, body in declared.items():
        if not SOURCE_NAME.fullmatch(name):
            raise ConfigError(f"sources.{_shown(name)}: a source name is 1 to 64 letters, digits, '_', '-' or '.', "
                              "starting with a letter or digit")
        if name.lower() in folded:  # the names are folders locally, and some file systems ignore case
            raise ConfigError(f"sources.{name}: differs from sources.{folded[name.lower()]} only in case")
        folded[name.lower()] = name
        path = f"sources.{name}"
        fields = _object(body, path, SOURCE_KEYS)
        if "write_keys" not in fields:
            raise ConfigError(f"{path}.write_keys: required; list the write keys this source's apps send")
        keys = _keys(fields["write_keys"], f"{path}.write_keys")
        plans = parse_plans(fields["plans"], f"{path}.plans") if "plans" in fields else policy.plans
        controls = _controls(fields.get("controls", {}), f"{path}.controls", policy.controls)
        valid = _key(fields["valid_write_key"], f"{path}.valid_write_key") if "valid_write_key" in fields else None
        invalid = _key(fields["invalid_write_key"], f"{path}.invalid_write_key") if "invalid_write_key" in fields else shared_invalid
        if invalid is None:
            raise ConfigError(f"{path}.invalid_write_key: required, since the document has no invalid_write_key "
                              "for every source")
        sources.append(Source(name, keys, Policy(plans, controls), valid, invalid))
    return tuple(sources)


def _check_roles(sources: tuple[Source, ...], shared_invalid: str | None) -> None:
    """Each key has one role, so no source's events can reach another's destinations: an inbound key belongs to
    one source and is no other source's valid destination, and a key that takes invalid events takes no valid
    ones. Messages name key paths, never keys."""
    inbound: dict[str, tuple[str, str]] = {}  # key -> (source name, its path)
    for source in sources:
        for index, key in enumerate(source.write_keys):
            path = f"sources.{source.name}.write_keys[{index}]"
            if key in inbound:
                owner, where = inbound[key]
                raise ConfigError(f"{path}: one inbound key is listed under two sources, sources.{owner} ({where}) "
                                  f"and sources.{source.name}; a key must route to exactly one source")
            inbound[key] = source.name, path
    invalid = {source.invalid_write_key: f"sources.{source.name}.invalid_write_key" for source in sources}
    if shared_invalid is not None:
        invalid[shared_invalid] = "invalid_write_key"
    for source in sources:
        path = f"sources.{source.name}"
        if source.valid_write_key is not None:
            owner, where = inbound.get(source.valid_write_key, (source.name, ""))
            if owner != source.name:
                raise ConfigError(f"{path}.valid_write_key: is the inbound key at {where}; valid events of one "
                                  "source must not reach another source's Segment source")
            if source.valid_write_key in invalid:
                raise ConfigError(f"{path}.valid_write_key: also receives invalid events ({invalid[source.valid_write_key]})")
        for index, key in enumerate(source.write_keys):
            if key in invalid:
                raise ConfigError(f"{path}.write_keys[{index}]: is also the invalid destination {invalid[key]}; "
                                  "apps must not send straight to a source of invalid events")


def _object(value: Any, path: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    where = f"{path}: " if path else "the document: "
    if not isinstance(value, dict):
        raise ConfigError(f"{where}is a JSON {_json_type(value)}; expected an object")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                prefix = f"{path}." if path else ""
                raise ConfigError(f"{prefix}{_name(key)}: unknown key; expected one of {', '.join(allowed)}")
    return value


def parse_plans(value: Any, path: str) -> tuple[str, ...]:
    """$id prefixes as a Policy holds them ("jaffle_shop" read as "jaffle_shop/"), checked; errors name `path`."""
    if not isinstance(value, list):
        raise ConfigError(f"{path}: is a JSON {_json_type(value)}; expected an array of $id prefixes such as \"jaffle_shop/\"")
    plans: dict[str, int] = {}
    for index, plan in enumerate(value):
        if not isinstance(plan, str) or not PLAN.fullmatch(plan) or len(plan) > MAX_SCHEMA_ID_LENGTH or ".." in plan.split("/"):
            raise ConfigError(f"{path}[{index}]: {_shown(plan)} is not a $id prefix such as \"jaffle_shop/\" or "
                              "\"segment/demo/\"")
        prefix = plan if plan.endswith("/") else plan + "/"
        if prefix in plans:
            raise ConfigError(f"{path}[{index}]: {_shown(plan)} is the same plan as {path}[{plans[prefix]}]")
        plans[prefix] = index
    return tuple(plans)


def _choice(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed or not isinstance(value, str):
        raise ConfigError(f"{path}: {_shown(value)} is not one of {', '.join(allowed)}")
    return value


def _controls(value: Any, path: str, base: Controls) -> Controls:
    """`base` with the keys given here replaced: a source's controls merge key by key over the document's."""
    fields = _object(value, path, CONTROL_KEYS)
    changes: dict[str, Any] = {}
    for name, allowed in (("unplanned_events", UNPLANNED_EVENTS), ("unplanned_properties", UNPLANNED_PROPERTIES),
                          ("violations", VIOLATIONS)):
        if name in fields:
            changes[name] = _choice(fields[name], f"{path}.{name}", allowed)
    if "common_schema" in fields:
        common = fields["common_schema"]
        if common is None:  # a source can switch off the document's common schema
            changes.update(common_schema=None, common_schema_violations=COMMON_SCHEMA_VIOLATIONS[0])
        else:
            where = f"{path}.common_schema"
            common = _object(common, where, COMMON_SCHEMA_KEYS)
            if "id" not in common:
                raise ConfigError(f"{where}.id: required; the $id of the schema every event must also pass")
            if not is_valid_schema_id(common["id"]):
                raise ConfigError(f"{where}.id: {_shown(common['id'])} is not a $id such as \"common/Context/1-0.json\"")
            changes["common_schema"] = common["id"]
            changes["common_schema_violations"] = _choice(common.get("violations", COMMON_SCHEMA_VIOLATIONS[0]),
                                                          f"{where}.violations", COMMON_SCHEMA_VIOLATIONS)
    return base._replace(**changes)


def _keys(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{path}: expected a non-empty array of write keys")
    seen: dict[str, int] = {}
    for index, key in enumerate(value):
        key = _key(key, f"{path}[{index}]")
        if key in seen:
            raise ConfigError(f"{path}[{index}]: repeats {path}[{seen[key]}]")
        seen[key] = index
    return tuple(seen)


def _key(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: expected a write key string")
    if len(value) > MAX_WRITE_KEY_CHARS:
        raise ConfigError(f"{path}: a write key of {len(value)} characters; at most {MAX_WRITE_KEY_CHARS}")
    if value != value.strip() or not value.isprintable():
        raise ConfigError(f"{path}: a write key with surrounding spaces or control characters; paste it again")
    return value


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON keeps the last of two equal keys silently: a source listed twice would lose its first definition.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ConfigError(f"{_name(key)}: appears twice in one object")
        found[key] = value
    return found


def _name(key: str) -> str:
    """A key as a path shows it: plain keys as they are (controls.violatons), others quoted and cut short."""
    return key if PLAIN_KEY.fullmatch(key) else _shown(key)


def _shown(value: Any) -> str:
    """A value for a message: a 10 KB name must not become a 10 KB log line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
