"""Maps a method and path, under any prefix, to what the registry does with the request."""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

from .errors import MethodNotAllowedError, NotFoundError


class Action(enum.Enum):
    BATCH = "batch"  # a {"batch": [...]} envelope
    SINGLE = "single"  # one event as the whole body
    METRICS = "metrics"  # browser and Kotlin telemetry: answered, never validated or forwarded
    SETTINGS = "settings"  # the CDN settings document the browser and mobile SDKs fetch
    PREFLIGHT = "preflight"  # CORS OPTIONS


# Segment's HTTP API names, the one-letter paths analytics.js posts to, and the batch paths of every SDK.
SINGLE_CALLS = {
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}
BATCH_PATHS = frozenset({"batch", "b"})
METRICS_PATHS = frozenset({"m"})

# API Gateway stages and custom domains add prefixes, so only the tail of the path is matched.
_CALL_PATH = re.compile(r"(?:^|/)v1/([a-z]+)/?\Z")
# Browser SDKs fetch {cdnURL}/v1/projects/{key}/settings; mobile ones {cdnHost}/projects/{key}/settings.
_SETTINGS_PATH = re.compile(r"\A(?P<prefix>.*?)/(?:v1/)?projects/(?P<write_key>[^/]+)/settings/?\Z")


class Route(NamedTuple):
    action: Action
    call_type: str | None = None  # for SINGLE: the Segment call the path names
    write_key: str | None = None  # for SETTINGS: the key in the path
    prefix: str = ""  # for SETTINGS: what precedes /v1 so the document can point back at this registry


def match(method: str, path: str) -> Route:
    """Raises NotFoundError or MethodNotAllowedError, naming the path, when nothing serves the request."""
    settings = _SETTINGS_PATH.match(path)
    if settings:
        return _for_method(method, "GET", Route(Action.SETTINGS, write_key=settings["write_key"], prefix=settings["prefix"]), path)
    call = _CALL_PATH.search(path)
    name = call[1] if call else None
    if name in BATCH_PATHS:
        return _for_method(method, "POST", Route(Action.BATCH), path)
    if name in SINGLE_CALLS:
        return _for_method(method, "POST", Route(Action.SINGLE, call_type=SINGLE_CALLS[name]), path)
    if name in METRICS_PATHS:
        return _for_method(method, "POST", Route(Action.METRICS), path)
    raise NotFoundError(f"no route for {path!r}; post Segment calls to .../v1/batch, .../v1/b or .../v1/<call>")


def _for_method(method: str, allowed: str, route: Route, path: str) -> Route:
    if method == allowed:
        return route
    if method == "OPTIONS":
        return Route(Action.PREFLIGHT)
    raise MethodNotAllowedError(f"{method} is not allowed on {path!r}; use {allowed}")
