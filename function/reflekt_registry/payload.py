"""Turns a decoded request into the events it carries, the write keys it presents and the client's sentAt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, NamedTuple

from .errors import BadRequestError, UnauthorizedError
from .request import ApiGatewayEvent
from .routes import Action, Route
from .validator import ANNOTATION_KEY

CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
# An ISO-8601 timestamp is at most 35 characters; anything much longer is junk that would eat into the batch's
# 500 KB once spliced into every forwarded envelope.
MAX_SENT_AT_CHARS = 64
# Segment merges these batch-level objects into every event of the batch.
BATCH_LEVEL_OBJECTS = ("context", "integrations")


class Envelope(NamedTuple):
    events: list[dict[str, Any]]
    write_keys: frozenset[str]  # every key the request presented: header, body and per-event
    sent_with: list[str]  # each event's key: its own writeKey, else the request's (Basic auth, else body)
    sent_at: str | None  # the client's clock when it sent, which Segment needs to correct timestamps


def decode(event: ApiGatewayEvent, route: Route) -> Envelope:
    body = event.json_body
    if not isinstance(body, dict):
        raise BadRequestError(f"body is a JSON {_json_type(body)}; expected an object")
    request_keys = list(filter(None, [_basic_auth_key(event.headers.get("authorization")), _key(body, "writeKey", "body")]))
    keys = set(request_keys)
    sent_with = []
    if route.action is Action.BATCH:
        events = _batch_events(body)
        sent_at = body.get("sentAt")
    else:
        if body.get("type") is None:
            body["type"] = route.call_type
        events = [body]
        sent_at = body.get("sentAt")
    for index, message in enumerate(events):
        where = f"batch[{index}]" if route.action is Action.BATCH else "body"
        _check_type(message, where)
        key = _key(message, "writeKey", where) or (request_keys[0] if request_keys else None)
        if key:
            keys.add(key)
        sent_with.append(key)
        # The inbound key must never reach Segment inside an event forwarded under another source's key.
        message.pop("writeKey", None)
        _fill_defaults(message, event.source_ip)
    if not keys:
        raise UnauthorizedError("no write key: send it as Basic auth (the SDK default) or as writeKey in the body")
    if None in sent_with:  # only some events carry their own key: the others could go on under no source's key
        where = f"batch[{sent_with.index(None)}]"
        raise UnauthorizedError(f"{where} has no writeKey, and the request presents none for it")
    usable_sent_at = sent_at if isinstance(sent_at, str) and len(sent_at) <= MAX_SENT_AT_CHARS else None
    return Envelope(events, frozenset(keys), sent_with, usable_sent_at)


def _batch_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    if "batch" not in body:
        raise BadRequestError("body has no batch: expected {\"batch\": [events]}")
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise BadRequestError(f"batch is a JSON {_json_type(batch)}; expected an array of events")
    shared = {}
    for name in BATCH_LEVEL_OBJECTS:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise BadRequestError(f"{name} is a JSON {_json_type(value)}; expected an object")
        shared[name] = value or {}
    for index, message in enumerate(batch):
        if not isinstance(message, dict):
            raise BadRequestError(f"batch[{index}] is a JSON {_json_type(message)}; expected an event object")
        inherit_batch_level(message, shared)
    return batch


def inherit_batch_level(message: dict[str, Any], shared: dict[str, Any]) -> None:
    """Merges the batch's context and integrations into an event, its own keys winning, as Segment does."""
    for name, values in shared.items():
        own = message.get(name) or {}
        if values and isinstance(own, dict):
            message[name] = {**values, **own}


def _check_type(message: dict[str, Any], where: str) -> None:
    call_type = message.get("type")
    if not isinstance(call_type, str) or call_type not in CALL_TYPES:
        raise BadRequestError(f"{where}.type is {call_type!r}; expected one of {', '.join(sorted(CALL_TYPES))}")


def _fill_defaults(message: dict[str, Any], source_ip: str | None) -> None:
    """Adds what Segment would add itself, but can no longer, since it sees the registry instead of the client."""
    if not message.get("messageId"):
        # Derived from what the client sent, so its retry of the same event dedupes at Segment; sentAt is the
        # one field a retry changes.
        content = {name: value for name, value in message.items() if name != "sentAt"}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
        message["messageId"] = f"registry-{digest[:32]}"
    context = message.get("context")
    if context is None:
        context = message["context"] = {}
    if isinstance(context, dict):
        # The annotation namespace is the registry's: a client must not be able to forge or pre-empt it.
        context.pop(ANNOTATION_KEY, None)
        if source_ip and not context.get("ip"):
            context["ip"] = source_ip


def _key(container: dict[str, Any], name: str, where: str) -> str | None:
    value = container.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnauthorizedError(f"{where}.{name} is a JSON {_json_type(value)}; expected a write key string")
    return value


def _basic_auth_key(header: str | None) -> str | None:
    """The write key of `Basic base64(key:)`; other schemes (OAuth Bearer) carry the key in the body instead."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as e:
        raise UnauthorizedError("Authorization header is not valid Basic auth") from e
    return decoded.partition(":")[0] or None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
