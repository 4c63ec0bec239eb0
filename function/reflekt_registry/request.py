"""A read-only view over an API Gateway HTTP API (payload 2.0) event that decodes the body lazily and safely."""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from .errors import BadRequestError

# Twice Segment's 500 KB batch cap, which every SDK keeps under; a bigger body did not come from an SDK.
MAX_BODY_BYTES = 1 << 20
# The encoded body can be at most this long before decoding could yield MAX_BODY_BYTES of anything
# (base64 inflates by 4/3); checking it first keeps a huge body from costing a decode.
MAX_ENCODED_BODY_BYTES = MAX_BODY_BYTES * 4 // 3 + 4
GZIP_MAGIC = b"\x1f\x8b"


class Headers(Mapping[str, str]):
    """Case-insensitive header lookup: payload 2.0 lowercases names, but other callers may not."""

    def __init__(self, raw: Mapping[str, str] | None):
        self._headers = {name.lower(): value for name, value in (raw or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


class ApiGatewayEvent(Mapping[str, Any]):
    """The raw event stays intact; properties give typed, null-safe access to the parts the registry reads."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def _http(self) -> Mapping[str, Any]:
        # key might exist but be null
        return (self.raw.get("requestContext") or {}).get("http") or {}

    @property
    def method(self) -> str:
        return str(self._http.get("method") or "GET").upper()

    @property
    def path(self) -> str:
        return str(self.raw.get("rawPath") or self._http.get("path") or "/")

    @property
    def source_ip(self) -> str | None:
        return self._http.get("sourceIp") or None

    @property
    def domain_name(self) -> str | None:
        return (self.raw.get("requestContext") or {}).get("domainName") or self.headers.get("host")

    @cached_property
    def headers(self) -> Headers:
        return Headers(self.raw.get("headers"))

    @cached_property
    def body(self) -> bytes:
        """The body as the client meant it: base64 undone, gzip inflated, at most MAX_BODY_BYTES."""
        raw = self.raw.get("body") or ""
        if len(raw) > MAX_ENCODED_BODY_BYTES:
            raise BadRequestError(f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
        if self.raw.get("isBase64Encoded"):
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as e:
                raise BadRequestError("body is marked base64 but is not valid base64") from e
        else:
            data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        if "gzip" in self.headers.get("content-encoding", "").lower() or data.startswith(GZIP_MAGIC):
            data = _gunzip(data)
        if len(data) > MAX_BODY_BYTES:
            raise BadRequestError(f"body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}")
        return data

    @cached_property
    def json_body(self) -> Any:
        """The body parsed as JSON whatever the Content-Type says (browser and Kotlin SDKs send text/plain)."""
        body = self.body
        if not body.strip():
            raise BadRequestError("body is empty; expected a JSON object")
        try:
            return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
        except UnicodeDecodeError as e:
            raise BadRequestError("body is not valid UTF-8") from e
        except json.JSONDecodeError as e:
            raise BadRequestError(f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
        except RecursionError as e:
            raise BadRequestError("body is nested too deeply to be an analytics event") from e
        except ValueError as e:  # e.g. an integer past Python's digit limit
            raise BadRequestError(f"body has a value JSON cannot carry: {e}") from e


# NaN and Infinity parse in Python but are not JSON: forwarded, they would make Segment refuse the whole batch.
def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a JSON number")
    return value


def _gunzip(data: bytes) -> bytes:
    """Inflates at most one byte past the limit, so a gzip bomb costs a bounded amount of memory and time."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_BODY_BYTES + 1)
    except zlib.error as e:
        raise BadRequestError(f"body is marked gzip but cannot be inflated: {e}") from e
    if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise BadRequestError(f"body inflates to more than {MAX_BODY_BYTES} bytes; the limit is {MAX_BODY_BYTES}")
    if not inflater.eof:
        raise BadRequestError("body is marked gzip but the gzip stream is truncated")
    return out
