"""Finds the source a request's write keys belong to: one lookup per key, whatever the number of keys, and no
timing that tells a client how close its key came to a real one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from .document import Document, Source
from .errors import UnauthorizedError

# Enough of a refused key to recognise it in an error, too little to replay it.
SHOWN_KEY_CHARS = 4
# Keys are looked up by their HMAC under this secret, new in every process. A dict keyed by the keys themselves
# would compare a presented key with a stored one byte by byte, and hash them with a hash a client can predict,
# so response times could reveal a real key's prefix. An HMAC under a secret the client never sees makes the
# dict's hashing and comparing work on values unrelated to any real key: the lookup costs the same for 5,000
# keys as for one, and says nothing about them. The final comparison is constant-time as well.
_SECRET = secrets.token_bytes(32)


class SourceRouter:
    """The sources of one configuration document, by inbound key."""

    def __init__(self, document: Document):
        self._sources = {_digest(key): (_bytes(key), source) for source in document.sources for key in source.write_keys}
        self._default = document.default_source
        self._unlisted = ("is in no source of the configuration document" if document.declared
                          else "is not in REGISTRY_WRITE_KEYS")

    def source_for(self, presented: Iterable[str]) -> Source:
        """The one source every presented key belongs to, so no part of a request rides on another source's key."""
        found: dict[str, Source] = {}
        for key in presented:
            source = self._lookup(key)
            if source is None:
                raise UnauthorizedError(f"write key {key[:SHOWN_KEY_CHARS]!r}… {self._unlisted}")
            found[source.name] = source
        if not found:
            raise UnauthorizedError("no write key")
        if len(found) > 1:
            raise UnauthorizedError(f"the request presents write keys of {len(found)} sources "
                                    f"({', '.join(sorted(found))}); send one source's keys per request")
        [source] = found.values()
        return source

    def _lookup(self, key: str) -> Source | None:
        candidate = _bytes(key)
        entry = self._sources.get(_digest(candidate))
        if entry is not None and hmac.compare_digest(entry[0], candidate):
            return entry[1]
        return self._default


def _digest(key: str | bytes) -> bytes:
    return hmac.new(_SECRET, key if isinstance(key, bytes) else _bytes(key), hashlib.sha256).digest()


def _bytes(key: str) -> bytes:
    # JSON can carry lone surrogates, which strict UTF-8 refuses to encode; such a key must be refused, not crash.
    return key.encode("utf-8", "surrogatepass")
