"""SourceRouter: exact matches only, every presented key of one source, and refusals that do not leak the key."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from reflekt_registry.auth import SourceRouter
from reflekt_registry.controls import Policy
from reflekt_registry.document import ENVIRONMENT_SOURCE, Environment, Source, from_environment, parse
from reflekt_registry.errors import UnauthorizedError

ALLOWED = ("wk_live_ABCD1234", "second-key", "clé-ünïcode")
NOT_LISTED = "is not in REGISTRY_WRITE_KEYS"


def environment_router(keys: tuple[str, ...], *, local: bool = False) -> SourceRouter:
    source = Source(ENVIRONMENT_SOURCE, keys, Policy(), "valid-wk", "invalid-wk")
    return SourceRouter(from_environment(Environment(source, forwarding=True, local=local)))


ALLOWLIST = environment_router(ALLOWED)


def document_router(**extra) -> SourceRouter:
    document = {"version": 1, "invalid_write_key": "shared-invalid", **extra, "sources": {
        "web": {"write_keys": ["web-1", "web-2"]},
        "ios": {"write_keys": ["ios-1"], "valid_write_key": "ios-valid"},
        "server": {"write_keys": ["server-1"]},
    }}
    return SourceRouter(parse(json.dumps(document).encode(), Environment(None, forwarding=True, local=False)))


def refusal(presented: list[str], router: SourceRouter = ALLOWLIST) -> str:
    with pytest.raises(UnauthorizedError) as excinfo:
        router.source_for(presented)
    assert excinfo.value.status == HTTPStatus.UNAUTHORIZED
    return str(excinfo.value)


@pytest.mark.parametrize("key", ALLOWED)
def test_listed_key_is_accepted(key):
    """Each listed key, non-ASCII included, is accepted on its own and finds the environment's source."""
    assert ALLOWLIST.source_for([key]).name == ENVIRONMENT_SOURCE


@pytest.mark.parametrize(
    "key",
    ["wk_live_ABCD123", "wk_live_ABCD12345", "k_live_ABCD1234", "wk_live_abcd1234", "WK_LIVE_ABCD1234",
     "wk_live_ABCD1234 ", " wk_live_ABCD1234", "", "cle-unicode"],
    ids=["prefix", "suffix", "missing-first-char", "lower-case", "upper-case", "trailing-space", "leading-space",
         "empty", "unicode-stripped"],
)
def test_near_miss_is_refused_showing_at_most_four_characters(key):
    """A key that differs in any way from every listed key is a 401 that shows no more than its first 4 characters."""
    assert refusal([key]) == f"write key {key[:4]!r}… {NOT_LISTED}"


def test_refusal_shows_only_the_first_four_characters_of_a_long_key():
    """The refused key's fifth character onwards never appears in the error."""
    message = refusal(["sk_secret_value_9"])
    assert "'sk_s'" in message
    assert "secret" not in message and "sk_se" not in message


@pytest.mark.parametrize(
    "presented,shown",
    [
        (["wk_live_ABCD1234", "intruder-key"], "intr"),
        (["intruder-key", "wk_live_ABCD1234"], "intr"),
        (["second-key", "wk_live_ABCD1234", "wk_live_ABCD123"], "wk_l"),
    ],
    ids=["allowed-then-refused", "refused-then-allowed", "two-allowed-one-near-miss"],
)
def test_every_presented_key_must_be_allowed(presented, shown):
    """One refused key refuses the request, wherever it comes among allowed ones."""
    assert refusal(presented) == f"write key {shown!r}… {NOT_LISTED}"


@pytest.mark.parametrize("presented", [["anything"], ["", "x" * 1000], ["\ud800"]], ids=["one", "several", "lone-surrogate"])
def test_the_local_servers_open_source_takes_any_key(presented):
    """Locally, an empty allowlist is a source that takes whatever keys are presented."""
    assert environment_router((), local=True).source_for(presented).name == ENVIRONMENT_SOURCE


def test_key_that_is_not_valid_unicode_is_refused_not_crashed():
    """A JSON writeKey with a lone surrogate ("\\ud800" is legal JSON) is a 401, not a UnicodeEncodeError 500."""
    assert refusal(["\ud800-key"]) == f"write key '\\ud800-ke'… {NOT_LISTED}"


# -- sources of a document ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("presented,source", [(["web-1"], "web"), (["web-1", "web-2"], "web"), (["ios-1"], "ios"),
                                              (["server-1"], "server")])
def test_each_key_finds_its_source(presented, source):
    """A request's keys find the one source that lists them all."""
    assert document_router().source_for(presented).name == source


def test_keys_of_two_sources_are_refused_naming_the_sources_not_the_keys():
    """No request may ride on two sources' keys: its events would be judged and routed as only one of them."""
    message = refusal(["web-1", "ios-1"], document_router())
    assert message == "the request presents write keys of 2 sources (ios, web); send one source's keys per request"
    assert "web-1" not in message and "ios-1" not in message


def test_a_key_in_no_source_is_refused():
    assert refusal(["stranger"], document_router()) == "write key 'stra'… is in no source of the configuration document"


def test_a_key_in_no_source_goes_to_the_default_source():
    """default_source takes keys no source lists, but a request mixing one with another source's key is refused."""
    router = document_router(default_source="server")
    assert router.source_for(["stranger"]).name == "server"
    assert router.source_for(["stranger", "server-1"]).name == "server"
    assert refusal(["stranger", "web-1"], router).startswith("the request presents write keys of 2 sources (server, web)")


def test_a_destination_key_is_not_an_inbound_key():
    """A source's valid or invalid destination key does not let a client in."""
    router = document_router()
    for key in ("ios-valid", "shared-invalid"):
        assert refusal([key], router).endswith("is in no source of the configuration document")


def test_five_thousand_keys_each_find_their_source():
    """500 sources of 10 keys: every key finds its own source (the lookup is a dict by HMAC, not a scan)."""
    sources = {f"s{i}": {"write_keys": [f"key-{i}-{j}" for j in range(10)]} for i in range(500)}
    document = {"version": 1, "invalid_write_key": "shared-invalid", "sources": sources}
    router = SourceRouter(parse(json.dumps(document).encode(), Environment(None, forwarding=True, local=False)))
    assert all(router.source_for([f"key-{i}-{j}"]).name == f"s{i}" for i in range(500) for j in range(10))
