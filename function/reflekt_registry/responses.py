"""HTTP responses in API Gateway's payload 2.0 shape, with the CORS headers browser SDKs need."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, NamedTuple

from .errors import RegistryError, UnavailableError
from .request import ApiGatewayEvent

APPLICATION_JSON = "application/json"
# analytics.js >= 1.84 sends Authorization and X-Retry-Count, which makes its requests preflighted.
CORS_ALLOW_HEADERS = "content-type, authorization, x-retry-count"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"
# Browsers cache the preflight answer this long (the most Chromium honours).
CORS_MAX_AGE_SECONDS = 7200


class Response(NamedTuple):
    status: HTTPStatus
    body: dict[str, Any] | str | None = None  # a dict is sent as JSON, a str as it is, in `content_type`
    headers: Mapping[str, str] = MappingProxyType({})
    content_type: str = APPLICATION_JSON

    def to_proxy(self, event: ApiGatewayEvent) -> dict[str, Any]:
        headers = {**cors_headers(event), **self.headers}
        if self.body is not None:
            headers["content-type"] = self.content_type
        return {
            "statusCode": int(self.status),
            "headers": headers,
            "body": "" if self.body is None else self.body if isinstance(self.body, str) else json.dumps(self.body),
            "isBase64Encoded": False,
        }


# Every accepted request gets exactly this: older Python SDKs count anything but 200 as a failure.
ACCEPTED = Response(HTTPStatus.OK, {"success": True})
PREFLIGHT = Response(HTTPStatus.NO_CONTENT)


def cors_headers(event: ApiGatewayEvent) -> dict[str, str]:
    # Echoing the origin (rather than "*") also satisfies browsers that send credentials.
    origin = event.headers.get("origin")
    headers = {
        "access-control-allow-origin": origin or "*",
        "access-control-allow-methods": CORS_ALLOW_METHODS,
        "access-control-allow-headers": CORS_ALLOW_HEADERS,
        "access-control-max-age": str(CORS_MAX_AGE_SECONDS),
    }
    if origin:
        headers["access-control-allow-credentials"] = "true"
        headers["vary"] = "Origin"
    return headers


def error_response(error: RegistryError) -> Response:
    """The one place an error becomes a status; 5xx bodies stay generic so internals don't leak.

    The body has the `code` and `message` Segment's own errors carry, which the Python SDK logs.
    """
    code = error.status.phrase.lower().replace(" ", "_")
    if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR and not isinstance(error, UnavailableError):
        return Response(error.status, {"success": False, "code": code, "message": "internal error"})
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        headers["retry-after"] = retry_after
    message = str(error) if error.status < HTTPStatus.INTERNAL_SERVER_ERROR else "a dependency is unavailable; retry"
    return Response(error.status, {"success": False, "code": code, "message": message}, headers)
