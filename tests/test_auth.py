"""WriteKeyAllowlist: exact matches only, every presented key checked, and refusals that do not leak the key."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from reflekt_registry.auth import WriteKeyAllowlist
from reflekt_registry.errors import UnauthorizedError

ALLOWED = ("wk_live_ABCD1234", "second-key", "clé-ünïcode")
ALLOWLIST = WriteKeyAllowlist(ALLOWED)


def refusal(presented: list[str]) -> str:
    with pytest.raises(UnauthorizedError) as excinfo:
        ALLOWLIST.check(presented)
    assert excinfo.value.status == HTTPStatus.UNAUTHORIZED
    return str(excinfo.value)


@pytest.mark.parametrize("key", ALLOWED)
def test_listed_key_is_accepted(key):
    """Each listed key, non-ASCII included, is accepted on its own."""
    assert not ALLOWLIST.open
    ALLOWLIST.check([key])


@pytest.mark.parametrize(
    "key",
    ["wk_live_ABCD123", "wk_live_ABCD12345", "k_live_ABCD1234", "wk_live_abcd1234", "WK_LIVE_ABCD1234",
     "wk_live_ABCD1234 ", " wk_live_ABCD1234", "", "cle-unicode"],
    ids=["prefix", "suffix", "missing-first-char", "lower-case", "upper-case", "trailing-space", "leading-space",
         "empty", "unicode-stripped"],
)
def test_near_miss_is_refused_showing_at_most_four_characters(key):
    """A key that differs in any way from every listed key is a 401 that shows no more than its first 4 characters."""
    message = refusal([key])
    assert message == f"write key {key[:4]!r}… is not in REGISTRY_WRITE_KEYS"


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
    assert refusal(presented) == f"write key {shown!r}… is not in REGISTRY_WRITE_KEYS"


@pytest.mark.parametrize("presented", [["anything"], ["", "x" * 1000], ["\ud800"]], ids=["one", "several", "lone-surrogate"])
def test_empty_allowlist_accepts_any_key(presented):
    """An empty allowlist is open and accepts whatever keys are presented."""
    allowlist = WriteKeyAllowlist([])
    assert allowlist.open
    allowlist.check(presented)


def test_key_that_is_not_valid_unicode_is_refused_not_crashed():
    """A JSON writeKey with a lone surrogate ("\\ud800" is legal JSON) is a 401, not a UnicodeEncodeError 500."""
    assert refusal(["\ud800-key"]) == "write key '\\ud800-ke'… is not in REGISTRY_WRITE_KEYS"
