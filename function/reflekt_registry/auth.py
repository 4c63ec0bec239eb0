"""The inbound write-key allowlist, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from .errors import UnauthorizedError

# Enough of a refused key to recognise it in an error, too little to replay it.
SHOWN_KEY_CHARS = 4


class WriteKeyAllowlist:
    """An empty allowlist accepts any key: only the local server may run that way."""

    def __init__(self, keys: Iterable[str]):
        self._keys = tuple(_bytes(key) for key in keys)

    @property
    def open(self) -> bool:
        return not self._keys

    def check(self, presented: Iterable[str]) -> None:
        """Every key a request presents must be allowed, so no part of a request rides on another's key."""
        for key in presented:
            if not self._permits(key):
                raise UnauthorizedError(f"write key {key[:SHOWN_KEY_CHARS]!r}… is not in REGISTRY_WRITE_KEYS")

    def _permits(self, key: str) -> bool:
        if self.open:
            return True
        candidate = _bytes(key)
        # No early exit: the time taken says nothing about which allowed key came closest.
        matches = [hmac.compare_digest(candidate, allowed) for allowed in self._keys]
        return any(matches)


def _bytes(key: str) -> bytes:
    # JSON can carry lone surrogates, which strict UTF-8 refuses to encode; such a key must be refused, not crash.
    return key.encode("utf-8", "surrogatepass")
