"""ApiGatewayEvent: case-insensitive headers, a null-safe request context, and a body that is decoded within bounds or
refused with 400."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest

from helpers import api_event
from reflekt_registry.errors import BadRequestError
from reflekt_registry.request import MAX_BODY_BYTES, MAX_ENCODED_BODY_BYTES, ApiGatewayEvent

BODY = {"batch": [{"type": "track", "event": "Order Completed", "userId": "u1"}], "writeKey": "wk"}
BODY_TEXT = json.dumps(BODY)


def refused(raw_event: dict[str, Any]) -> BadRequestError:
    """Reads the parsed body, which reads the decoded body first, and returns the 400 either stage raises."""
    with pytest.raises(BadRequestError) as excinfo:
        ApiGatewayEvent(raw_event).json_body
    assert excinfo.value.status == HTTPStatus.BAD_REQUEST
    return excinfo.value


def json_text_of_size(size: int) -> bytes:
    return b'"' + b"x" * (size - 2) + b'"'


# --- headers and request context -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent,asked",
    [("Content-Encoding", "content-encoding"), ("content-encoding", "CONTENT-ENCODING"), ("CONTENT-ENCODING", "Content-Encoding")],
)
def test_header_lookup_ignores_case(sent, asked):
    """A header is found under any capitalisation, whichever capitalisation the caller sent."""
    headers = ApiGatewayEvent({"headers": {sent: "gzip"}}).headers
    assert (headers[asked], headers.get(asked), asked in headers) == ("gzip", "gzip", True)


@pytest.mark.parametrize(
    "raw",
    [
        {"requestContext": None, "headers": None, "body": None},
        {"requestContext": {"http": None}, "headers": None},
        {},
    ],
    ids=["null-context-and-headers", "null-http", "empty-event"],
)
def test_missing_or_null_request_parts_read_as_defaults(raw):
    """A null or absent requestContext, http block or headers map reads as defaults instead of crashing."""
    event = ApiGatewayEvent(raw)
    assert (event.method, event.path, event.source_ip, event.domain_name, len(event.headers)) == ("GET", "/", None, None, 0)
    assert str(refused(raw)) == "body is empty; expected a JSON object"


@pytest.mark.parametrize(
    "raw,method,path",
    [
        ({"rawPath": "/prod/v1/b", "requestContext": {"http": {"method": "post", "path": "/v1/b"}}}, "POST", "/prod/v1/b"),
        ({"requestContext": {"http": {"method": "OPTIONS", "path": "/v1/t"}}}, "OPTIONS", "/v1/t"),
    ],
    ids=["rawPath-wins-method-uppercased", "http-path-fallback"],
)
def test_method_is_uppercased_and_raw_path_is_preferred(raw, method, path):
    """The method is upper-cased; rawPath (stage prefix included) wins over requestContext.http.path."""
    event = ApiGatewayEvent(raw)
    assert (event.method, event.path) == (method, path)


def test_domain_name_falls_back_to_the_host_header():
    """Without requestContext.domainName the Host header names the registry."""
    event = ApiGatewayEvent({"requestContext": {"http": {"method": "GET"}}, "headers": {"Host": "registry.example.com"}})
    assert event.domain_name == "registry.example.com"


# --- decoding the body -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        api_event(BODY_TEXT, headers={"content-type": "text/plain"}),
        api_event(BODY_TEXT, headers={"content-type": "application/json; charset=utf-8"}),
        api_event(BODY_TEXT.encode()),
        api_event(BODY_TEXT, gzip=True),
        api_event(gzip.compress(BODY_TEXT.encode())),
        api_event(gzip.compress(BODY_TEXT.encode()), headers={"Content-Encoding": "GZIP"}),
    ],
    ids=["text-plain", "json-charset", "base64", "gzip-by-header", "gzip-by-magic-bytes-only", "gzip-header-uppercase"],
)
def test_body_parses_as_json_whatever_the_encoding_and_content_type(raw):
    """JSON is parsed whatever Content-Type says, after undoing isBase64Encoded and gzip (by header or magic bytes)."""
    assert ApiGatewayEvent(raw).json_body == BODY


def _corrupt_crc(data: bytes) -> bytes:
    # The gzip trailer is CRC32 then ISIZE; flipping the CRC leaves a stream that inflates but fails its check.
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"body": "not base64!", "isBase64Encoded": True}, "body is marked base64 but is not valid base64"),
        ({"body": "abc", "isBase64Encoded": True}, "body is marked base64 but is not valid base64"),
        ({"body": "ZXhhbXBsZQ==é", "isBase64Encoded": True}, "body is marked base64 but is not valid base64"),
        (api_event(b"\x1f\x8bnot really deflate data at all"), "body is marked gzip but cannot be inflated"),
        (api_event(BODY_TEXT, headers={"content-encoding": "gzip"}), "body is marked gzip but cannot be inflated"),
        (api_event(_corrupt_crc(gzip.compress(BODY_TEXT.encode()))), "body is marked gzip but cannot be inflated"),
        (api_event(gzip.compress(BODY_TEXT.encode())[:-12]), "body is marked gzip but the gzip stream is truncated"),
        (api_event(gzip.compress(BODY_TEXT.encode())[:5]), "body is marked gzip but the gzip stream is truncated"),
        (api_event(None), "body is empty; expected a JSON object"),
        (api_event(""), "body is empty; expected a JSON object"),
        (api_event(" \r\n\t "), "body is empty; expected a JSON object"),
        (api_event(b""), "body is empty; expected a JSON object"),
        (api_event(b'{"event": "caf\xe9"}'), "body is not valid UTF-8"),
        (api_event(b'{"event": "\xff\xfe"}'), "body is not valid UTF-8"),
        (api_event("[" * 100_000), "body is nested too deeply to be an analytics event"),
        (api_event('{"a":' * 100_000), "body is nested too deeply to be an analytics event"),
    ],
    ids=["base64-bad-chars", "base64-bad-padding", "base64-non-ascii", "gzip-corrupt", "gzip-header-plain-body",
         "gzip-bad-crc", "gzip-truncated", "gzip-truncated-in-header", "null-body", "empty-body", "whitespace-body",
         "empty-base64-body", "latin1-byte", "invalid-utf8-bytes", "deep-arrays", "deep-objects"],
)
def test_unreadable_bodies_are_refused_with_400(raw, message):
    """Bad base64, corrupt or truncated gzip, empty bodies, invalid UTF-8 and runaway nesting are each a clear 400."""
    assert str(refused(raw)).startswith(message)


@pytest.mark.parametrize(
    "text,position",
    [
        ('{"a": }', "line 1 column 7"),
        ('{\n  "a": }', "line 2 column 8"),
        ('{"batch": [1 2]}', "line 1 column 14"),  # not a trailing comma: Python 3.13 reports those one column earlier
        ('{"a": 1} x', "line 1 column 10"),
    ],
)
def test_invalid_json_is_refused_with_its_line_and_column(text, position):
    """Invalid JSON is a 400 whose message says where parsing stopped."""
    message = str(refused(api_event(text)))
    assert message.startswith("body is not valid JSON: ")
    assert message.endswith(f"at {position}")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_numbers_json_cannot_carry_are_refused(number):
    """NaN, ±Infinity and overflowing numbers are a 400 naming the value: re-serialised for Segment they are not JSON."""
    message = str(refused(api_event('{"type": "track", "properties": {"total": %s}}' % number)))
    assert number.lstrip("-") in message


def test_integer_too_long_to_convert_is_refused():
    """An integer literal past Python's digit limit is a 400, not a ValueError escaping as a 500 the SDK retries."""
    message = str(refused(api_event('{"type": "track", "properties": {"n": %s}}' % ("9" * 5000))))
    assert message.startswith("body ")


# --- size limits -----------------------------------------------------------------------------------------------

ENCODINGS: dict[str, tuple[Callable[[bytes], dict[str, Any]], str]] = {
    "plain": (lambda data: api_event(data.decode()), "body is {size} bytes; the limit is {limit}"),
    "base64": (lambda data: api_event(data), "body is {size} bytes; the limit is {limit}"),
    "gzip": (lambda data: api_event(data, gzip=True), "body inflates to more than {limit} bytes; the limit is {limit}"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("size", [MAX_BODY_BYTES, MAX_BODY_BYTES + 1], ids=["at-limit", "one-over"])
def test_decoded_body_is_limited_to_max_body_bytes(encoding, size):
    """A body of MAX_BODY_BYTES once decoded is read; one byte more is a 400 naming the limit."""
    build, refusal = ENCODINGS[encoding]
    raw = build(json_text_of_size(size))
    if size <= MAX_BODY_BYTES:
        assert len(ApiGatewayEvent(raw).body) == size
    else:
        assert str(refused(raw)) == refusal.format(size=size, limit=MAX_BODY_BYTES)


@pytest.mark.parametrize("base64_encoded", [True, False], ids=["base64", "plain"])
def test_oversize_encoded_body_is_refused_before_decoding(base64_encoded):
    """An encoded body past MAX_ENCODED_BODY_BYTES is refused on its length alone, before any base64 decoding."""
    # "!" is not base64, so reaching the decoder would produce a different message.
    length = MAX_ENCODED_BODY_BYTES + 1
    raw = {"body": "!" * length, "isBase64Encoded": base64_encoded}
    assert str(refused(raw)) == f"body is {length} bytes; the limit is {MAX_BODY_BYTES}"


def test_gzip_bomb_is_refused_at_the_inflation_bound():
    """50 MB of compressed zeros is refused with 400 once inflation passes MAX_BODY_BYTES, not after inflating it all."""
    bomb = gzip.compress(bytes(50 << 20), compresslevel=9)
    raw = api_event(bomb, headers={"content-encoding": "gzip"})
    # The wire size is far under every limit, so only a bounded inflate can produce this message.
    assert len(raw["body"]) < MAX_BODY_BYTES // 10
    assert str(refused(raw)) == f"body inflates to more than {MAX_BODY_BYTES} bytes; the limit is {MAX_BODY_BYTES}"


def test_base64_body_is_decoded_to_the_exact_bytes_sent():
    """isBase64Encoded bodies are returned as the client's bytes, without re-encoding."""
    data = '{"name": "café ☕"}'.encode()
    raw = {"body": base64.b64encode(data).decode(), "isBase64Encoded": True}
    assert ApiGatewayEvent(raw).body == data
