"""The configuration document: every field parsed into typed values, every mistake refused naming its key path,
and the environment variables as the zero-configuration source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reflekt_registry.config import Settings
from reflekt_registry.controls import Controls, Policy
from reflekt_registry.document import (ENVIRONMENT_SOURCE, MAX_DOCUMENT_BYTES, Environment, Source, environment,
                                       from_environment, parse)
from reflekt_registry.errors import ConfigError
from s3_support import RUNTIME_ENV

NO_ENVIRONMENT = Environment(None, forwarding=True, local=False)
THREE_SOURCES = {
    "version": 1,
    "plans": ["jaffle_shop"],
    "controls": {"unplanned_events": "allow", "common_schema": {"id": "common/Context/1-0.json"}},
    "invalid_write_key": "shared-invalid",
    "sources": {
        "web": {"write_keys": ["web-key"], "controls": {"violations": "omit"}},
        "ios": {"write_keys": ["ios-key-1", "ios-key-2"], "valid_write_key": "ios-valid",
                "invalid_write_key": "ios-invalid", "controls": {"common_schema": None}},
        "server": {"write_keys": ["server-key"], "plans": []},
    },
}


def parsed(document: Any, env: Environment = NO_ENVIRONMENT):
    return parse(json.dumps(document).encode(), env)


def refused(document: Any, env: Environment = NO_ENVIRONMENT) -> str:
    with pytest.raises(ConfigError) as excinfo:
        parse(document if isinstance(document, bytes) else json.dumps(document).encode(), env)
    return str(excinfo.value)


def with_source(name: str = "web", **fields: Any) -> dict[str, Any]:
    return {"version": 1, "invalid_write_key": "shared-invalid", "sources": {name: {"write_keys": ["k1"], **fields}}}


def test_three_sources_parse_into_typed_values():
    """Plans and controls merge key by key over the document's; destinations fall back to the shared ones."""
    document = parsed(THREE_SOURCES)
    common = Controls(unplanned_events="allow", common_schema="common/Context/1-0.json")
    assert document.sources == (
        Source("web", ("web-key",), Policy(("jaffle_shop/",), common._replace(violations="omit")), None, "shared-invalid"),
        Source("ios", ("ios-key-1", "ios-key-2"), Policy(("jaffle_shop/",), common._replace(common_schema=None)),
               "ios-valid", "ios-invalid"),
        Source("server", ("server-key",), Policy((), common), None, "shared-invalid"),
    )
    assert document.default_source is None and document.declared


def test_pass_through_forwards_under_the_key_the_sdk_sent():
    web, ios, _ = parsed(THREE_SOURCES).sources
    assert web.valid_key_for("web-key") == "web-key"
    assert ios.valid_key_for("ios-key-2") == "ios-valid"


def test_default_source_names_a_source():
    assert parsed({**THREE_SOURCES, "default_source": "server"}).default_source.name == "server"
    assert refused({**THREE_SOURCES, "default_source": "android"}).startswith(
        "default_source: 'android' is not one of the sources ('web', 'ios', 'server')")


def test_a_document_without_sources_holds_the_environments_source_to_its_plans_and_controls():
    env = Environment(Source(ENVIRONMENT_SOURCE, ("client",), Policy(), "valid", "invalid"), forwarding=True, local=False)
    document = parsed({"version": 1, "plans": ["segment/demo/"], "controls": {"violations": "allow"}}, env)
    assert document.sources == (Source(ENVIRONMENT_SOURCE, ("client",), Policy(("segment/demo/",), Controls(violations="allow")),
                                       "valid", "invalid"),)
    assert not document.declared


@pytest.mark.parametrize("document,message", [
    ([], "the document: is a JSON array; expected an object"),
    ({}, "version: required; set it to 1"),
    ({"version": 2}, "version: 2 is not a known version; expected 1"),
    ({"version": True}, "version: True is not a known version; expected 1"),
    ({"version": 1.0}, "version: 1.0 is not a known version; expected 1"),
    ({"version": 1, "sourcs": {}}, "sourcs: unknown key; expected one of version, plans, controls, sources, invalid_write_key, default_source"),
    ({"version": 1, "plans": "jaffle_shop"}, "plans: is a JSON string; expected an array of $id prefixes"),
    ({"version": 1, "plans": ["../etc"]}, "plans[0]: '../etc' is not a $id prefix"),
    ({"version": 1, "plans": ["a/", "a"]}, "plans[1]: 'a' is the same plan as plans[0]"),
    ({"version": 1, "controls": {"violatons": "block"}}, "controls.violatons: unknown key; expected one of unplanned_events"),
    ({"version": 1, "controls": {"violations": "drop"}}, "controls.violations: 'drop' is not one of block, allow, omit"),
    ({"version": 1, "controls": {"unplanned_events": True}}, "controls.unplanned_events: True is not one of block, allow"),
    ({"version": 1, "controls": {"unplanned_properties": "block"}}, "controls.unplanned_properties: 'block' is not one of allow, omit"),
    ({"version": 1, "controls": {"common_schema": {}}}, "controls.common_schema.id: required"),
    ({"version": 1, "controls": {"common_schema": {"id": "http://x/y.json"}}}, "controls.common_schema.id: 'http://x/y.json' is not a $id"),
    ({"version": 1, "controls": {"common_schema": {"id": "c/C/1-0.json", "violations": "omit"}}},
     "controls.common_schema.violations: 'omit' is not one of block, allow"),
    ({"version": 1, "invalid_write_key": "x"}, "invalid_write_key: only applies to the document's sources, and it declares none"),
    ({"version": 1, "default_source": "web"}, "default_source: only applies to the document's sources, and it declares none"),
    ({"version": 1, "sources": {}}, "sources: declare at least one source"),
    ({"version": 1, "sources": []}, "sources: is a JSON array; expected an object"),
], ids=lambda value: None if isinstance(value, str) else json.dumps(value)[:40])
def test_document_mistakes_are_refused_naming_the_key(document, message):
    assert refused(document).startswith(message)


@pytest.mark.parametrize("fields,message", [
    ({"write_keys": []}, "sources.web.write_keys: expected a non-empty array of write keys"),
    ({"write_keys": "k1"}, "sources.web.write_keys: expected a non-empty array of write keys"),
    ({"write_keys": ["k1", 7]}, "sources.web.write_keys[1]: expected a write key string"),
    ({"write_keys": ["k1", ""]}, "sources.web.write_keys[1]: expected a write key string"),
    ({"write_keys": ["k1", " k2"]}, "sources.web.write_keys[1]: a write key with surrounding spaces"),
    ({"write_keys": ["k1", "k\n2"]}, "sources.web.write_keys[1]: a write key with surrounding spaces or control characters"),
    ({"write_keys": ["k1", "x" * 257]}, "sources.web.write_keys[1]: a write key of 257 characters; at most 256"),
    ({"write_keys": ["k1", "k1"]}, "sources.web.write_keys[1]: repeats sources.web.write_keys[0]"),
    ({"valid_write_key": 1}, "sources.web.valid_write_key: expected a write key string"),
    ({"controls": {"violations": "warn"}}, "sources.web.controls.violations: 'warn' is not one of block, allow, omit"),
    ({"controls": {"violatons": "block"}}, "sources.web.controls.violatons: unknown key"),
    ({"plans": ["jaffle shop"]}, "sources.web.plans[0]: 'jaffle shop' is not a $id prefix"),
    ({"writekeys": ["k1"]}, "sources.web.writekeys: unknown key; expected one of write_keys, plans, controls, valid_write_key, invalid_write_key"),
], ids=lambda value: None if isinstance(value, str) else json.dumps(value)[:40])
def test_source_mistakes_are_refused_naming_the_key(fields, message):
    assert refused(with_source(**fields)).startswith(message)


def test_a_source_needs_a_write_keys_list():
    document = {"version": 1, "invalid_write_key": "i", "sources": {"web": {"plans": []}}}
    assert refused(document).startswith("sources.web.write_keys: required")


def test_a_source_needs_an_invalid_destination():
    document = {"version": 1, "sources": {"web": {"write_keys": ["k1"]}}}
    assert refused(document).startswith("sources.web.invalid_write_key: required, since the document has no invalid_write_key")


def test_one_inbound_key_under_two_sources_is_refused_naming_both():
    document = {"version": 1, "invalid_write_key": "i", "sources": {
        "web": {"write_keys": ["a", "shared"]}, "ios": {"write_keys": ["shared"]}}}
    message = refused(document)
    assert message.startswith("sources.ios.write_keys[0]: one inbound key is listed under two sources, sources.web "
                              "(sources.web.write_keys[1]) and sources.ios")
    assert "shared" not in message.replace("sources", "")  # the key itself is a secret


@pytest.mark.parametrize("sources,message", [
    ({"web": {"write_keys": ["w"], "valid_write_key": "i"}}, "sources.web.valid_write_key: also receives invalid events (invalid_write_key)"),
    ({"web": {"write_keys": ["w"]}, "ios": {"write_keys": ["o"], "valid_write_key": "w"}},
     "sources.ios.valid_write_key: is the inbound key at sources.web.write_keys[0]"),
    ({"web": {"write_keys": ["w", "i"]}}, "sources.web.write_keys[1]: is also the invalid destination invalid_write_key"),
    ({"web": {"write_keys": ["w"]}, "ios": {"write_keys": ["o"], "invalid_write_key": "w"}},
     "sources.web.write_keys[0]: is also the invalid destination sources.ios.invalid_write_key"),
], ids=["valid-is-invalid", "valid-is-anothers-inbound", "inbound-is-invalid", "inbound-is-anothers-invalid"])
def test_no_key_can_route_one_sources_events_to_anothers_destinations(sources, message):
    assert refused({"version": 1, "invalid_write_key": "i", "sources": sources}).startswith(message)


def test_a_sources_own_inbound_key_may_be_its_valid_key():
    document = parsed(with_source(write_keys=["k1", "k2"], valid_write_key="k1"))
    assert document.sources[0].valid_key_for("k2") == "k1"


@pytest.mark.parametrize("name,message", [
    ("", "sources.'': a source name is 1 to 64"),
    ("web app", "sources.'web app': a source name is 1 to 64"),
    ("../web", "sources.'../web': a source name"),
    ("wéb", "sources.'wéb': a source name"),
    ("(environment)", "sources.'(environment)': a source name"),
    ("x" * 10_000, "sources.'" + "x" * 76 + "…: a source name"),
], ids=["empty", "space", "dots", "unicode", "environment", "10kb"])
def test_source_names_are_plain_and_short(name, message):
    """Names become folders locally and log fields: a 10 KB or unicode name is refused, and shown cut short."""
    assert refused(with_source(name)).startswith(message)


def test_source_names_that_differ_only_in_case_are_refused():
    document = {"version": 1, "invalid_write_key": "i", "sources": {"Web": {"write_keys": ["a"]}, "web": {"write_keys": ["b"]}}}
    assert refused(document) == "sources.web: differs from sources.Web only in case"


def test_a_key_given_twice_in_one_object_is_refused():
    """JSON would keep the second silently, dropping the first source's definition."""
    raw = b'{"version": 1, "invalid_write_key": "i", "sources": {"web": {"write_keys": ["a"]}, "web": {"write_keys": ["b"]}}}'
    assert refused(raw) == "web: appears twice in one object"


@pytest.mark.parametrize("raw,message", [
    (b"{", "the document is not JSON"), (b"\xff", "the document is not JSON"), (b"[" * 100_000, "the document is not JSON"),
    (b" " * (MAX_DOCUMENT_BYTES + 1), f"the document is {MAX_DOCUMENT_BYTES + 1} bytes; at most {MAX_DOCUMENT_BYTES}"),
], ids=["truncated", "not-utf8", "deep", "too-large"])
def test_unreadable_documents_are_refused(raw, message):
    assert refused(raw).startswith(message)


# -- the environment ---------------------------------------------------------------------------------------------

def env_of(local: bool = False, **variables: str) -> Environment:
    return environment(Settings.from_env({"SCHEMA_DIR": ".", **variables} if local else
                                         {"REGISTRY_BUCKET": "b", "REGISTRY_CONFIG_KEY": "registry/config.json", **RUNTIME_ENV,
                                          **variables},
                                         local=local))


PAIR = {"VALID_SEGMENT_WRITE_KEY": "valid", "INVALID_SEGMENT_WRITE_KEY": "invalid", "REGISTRY_WRITE_KEYS": "a,b"}


def test_zero_configuration_is_the_environments_single_source():
    """Without a document, today's variables are one source with the default policy, exactly as before."""
    document = from_environment(env_of(**PAIR))
    assert document.sources == (Source(ENVIRONMENT_SOURCE, ("a", "b"), Policy(), "valid", "invalid"),)
    assert document.default_source is None and not document.declared


def test_locally_no_allowlist_is_a_source_that_takes_any_key():
    document = from_environment(env_of(local=True))
    assert document.default_source == Source(ENVIRONMENT_SOURCE, (), Policy(), None, None)


@pytest.mark.parametrize("variables,message", [
    ({}, "no source is configured: set VALID_SEGMENT_WRITE_KEY, INVALID_SEGMENT_WRITE_KEY and REGISTRY_WRITE_KEYS"),
    ({"REGISTRY_WRITE_KEYS": "a"}, "events go to Segment, but VALID_SEGMENT_WRITE_KEY and INVALID_SEGMENT_WRITE_KEY are unset"),
    ({"VALID_SEGMENT_WRITE_KEY": "v", "INVALID_SEGMENT_WRITE_KEY": "i"}, "REGISTRY_WRITE_KEYS is empty"),
])
def test_in_lambda_a_document_without_sources_needs_the_whole_environment(variables, message):
    assert refused({"version": 1}, env_of(**variables)).startswith(message)


@pytest.mark.parametrize("variable", ["REGISTRY_WRITE_KEYS", "VALID_SEGMENT_WRITE_KEY"])
def test_sources_and_the_environments_keys_together_are_refused_naming_both(variable):
    """Two descriptions of where events go would leave one silently ignored."""
    variables = {"REGISTRY_WRITE_KEYS": "a"} if variable == "REGISTRY_WRITE_KEYS" else {
        "VALID_SEGMENT_WRITE_KEY": "v", "INVALID_SEGMENT_WRITE_KEY": "i"}
    message = refused(THREE_SOURCES, env_of(**variables))
    assert message.startswith("sources: the document declares sources and the environment sets VALID_SEGMENT_WRITE_KEY, "
                              "INVALID_SEGMENT_WRITE_KEY and REGISTRY_WRITE_KEYS too")


def test_locally_sources_need_no_segment():
    """The local server without Segment writes files; the open local source does not clash with sources."""
    assert [s.name for s in parsed(THREE_SOURCES, env_of(local=True)).sources] == ["web", "ios", "server"]


def test_an_odd_unknown_key_is_quoted_and_cut_short_in_the_path():
    """A key with a newline, or 10 KB long, cannot garble the message that names it."""
    assert refused({"version": 1, "controls": {"a\nb": 1}}).startswith("controls.'a\\nb': unknown key")
    message = refused({"version": 1, "x" * 10_000: 1})
    assert message.startswith("'" + "x" * 76 + "…: unknown key") and len(message) < 300
