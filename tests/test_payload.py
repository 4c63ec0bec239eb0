"""payload.decode: the events a request carries, every write key it presents, its sentAt, and the fields the registry
fills in because Segment now sees the registry instead of the client."""

from __future__ import annotations

import base64
import json
import re
from http import HTTPStatus
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import CLIENT_KEY, api_event
from reflekt_registry.errors import BadRequestError, RegistryError, UnauthorizedError
from reflekt_registry.payload import CALL_TYPES, Envelope, decode
from reflekt_registry.request import ApiGatewayEvent
from reflekt_registry.routes import Action, Route

BATCH = Route(Action.BATCH)
SOURCE_IP = "203.0.113.9"


def single(call_type: str) -> Route:
    return Route(Action.SINGLE, call_type=call_type)


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1", **fields}


def decoded(body: Any, route: Route = BATCH, **kwargs: Any) -> Envelope:
    # Always JSON-encode here: api_event would send a str body as raw text rather than as a JSON string.
    return decode(ApiGatewayEvent(api_event(json.dumps(body), **kwargs)), route)


def refused(body: Any, route: Route = BATCH, **kwargs: Any) -> RegistryError:
    with pytest.raises(RegistryError) as excinfo:
        decoded(body, route, **kwargs)
    return excinfo.value


# --- write keys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header_key,body,route,keys",
    [
        ("hdr", {"batch": [track()]}, BATCH, {"hdr"}),
        (None, {"batch": [track()], "writeKey": "body"}, BATCH, {"body"}),
        (None, {"batch": [track(writeKey="ev")]}, BATCH, {"ev"}),
        ("hdr", {"batch": [track(writeKey="ev1"), track(writeKey="ev2")], "writeKey": "body"}, BATCH, {"hdr", "body", "ev1", "ev2"}),
        ("k", {"batch": [track(writeKey="k")], "writeKey": "k"}, BATCH, {"k"}),
        ("hdr", {"batch": [track(writeKey="")], "writeKey": ""}, BATCH, {"hdr"}),
        (None, track(writeKey="WK_BROWSER"), single("track"), {"WK_BROWSER"}),
        ("hdr", track(writeKey="WK_BROWSER"), single("track"), {"hdr", "WK_BROWSER"}),
    ],
    ids=["basic-auth", "body", "per-event", "all-places", "same-key-everywhere", "empty-strings-ignored",
         "single-call-body", "single-call-and-basic"],
)
def test_every_presented_write_key_is_collected_and_none_stays_in_an_event(header_key, body, route, keys):
    """Keys from Basic auth, the body and each event are all collected; no event keeps a writeKey."""
    envelope = decoded(body, route, write_key=header_key)
    assert envelope.write_keys == frozenset(keys)
    assert [event for event in envelope.events if "writeKey" in event] == []


@pytest.mark.parametrize(
    "authorization,keys",
    [
        ("basic " + base64.b64encode(b"lower:").decode(), {"lower", "body"}),
        ("Basic " + base64.b64encode(b"no-colon").decode(), {"no-colon", "body"}),
        ("Bearer oauth-token", {"body"}),
        ("Basic " + base64.b64encode(b":").decode(), {"body"}),
    ],
    ids=["scheme-any-case", "no-colon", "bearer-falls-back-to-body", "empty-basic-user"],
)
def test_authorization_header_yields_the_basic_user_or_defers_to_the_body(authorization, keys):
    """Basic auth yields its user name (scheme in any case); Bearer and an empty user leave the body key to speak."""
    envelope = decoded({"batch": [track()], "writeKey": "body"}, write_key=None, headers={"authorization": authorization})
    assert envelope.write_keys == frozenset(keys)


@pytest.mark.parametrize(
    "authorization",
    ["Basic not-base64!", "Basic abc", "Basic " + base64.b64encode(b"\xff\xfe:").decode()],
    ids=["bad-chars", "bad-padding", "not-utf8"],
)
def test_malformed_basic_auth_is_401(authorization):
    """A Basic header that is not base64 of UTF-8 is a 401, even when the body has a key."""
    error = refused({"batch": [track()], "writeKey": "body"}, write_key=None, headers={"authorization": authorization})
    assert error.status == HTTPStatus.UNAUTHORIZED
    assert str(error) == "Authorization header is not valid Basic auth"


@pytest.mark.parametrize(
    "body,route,message",
    [
        ({"batch": [track()], "writeKey": 123}, BATCH, "body.writeKey is a JSON number"),
        ({"batch": [track()], "writeKey": ["k"]}, BATCH, "body.writeKey is a JSON array"),
        ({"batch": [track()], "writeKey": True}, BATCH, "body.writeKey is a JSON boolean"),
        ({"batch": [track(), track(writeKey={"k": 1})]}, BATCH, "batch[1].writeKey is a JSON object"),
        (track(writeKey=7), single("track"), "body.writeKey is a JSON number"),
    ],
    ids=["body-number", "body-array", "body-boolean", "event-object", "single-number"],
)
def test_non_string_write_key_is_401_naming_where(body, route, message):
    """A writeKey that is not a string is a 401 naming where it was and what JSON type it is."""
    error = refused(body, route)
    assert error.status == HTTPStatus.UNAUTHORIZED
    assert str(error) == f"{message}; expected a write key string"


@pytest.mark.parametrize(
    "body,route,headers",
    [
        ({"batch": [track()]}, BATCH, {}),
        ({"batch": [track()], "writeKey": None}, BATCH, {}),
        ({"batch": [track()]}, BATCH, {"authorization": "Bearer oauth-token"}),
        (track(), single("track"), {}),
    ],
    ids=["nothing", "null-body-key", "bearer-only", "single-call"],
)
def test_no_write_key_anywhere_is_401(body, route, headers):
    """Without a key in the header, the body or any event, the request is a 401."""
    error = refused(body, route, write_key=None, headers=headers)
    assert error.status == HTTPStatus.UNAUTHORIZED
    assert str(error).startswith("no write key")


# --- events ----------------------------------------------------------------------------------------------------


def test_batch_context_and_integrations_merge_with_the_event_winning():
    """Batch-level context and integrations merge into every event; an event's own keys win."""
    body = {
        "batch": [track(context={"locale": "en"}, integrations={"Amplitude": False}), track(messageId="m-2")],
        "context": {"locale": "fr", "app": {"name": "shop"}},
        "integrations": {"All": False, "Amplitude": True},
    }
    first, second = decoded(body, source_ip="").events
    assert (first["context"], first["integrations"]) == ({"locale": "en", "app": {"name": "shop"}}, {"All": False, "Amplitude": False})
    assert (second["context"], second["integrations"]) == ({"locale": "fr", "app": {"name": "shop"}}, {"All": False, "Amplitude": True})


@pytest.mark.parametrize(
    "body,message",
    [
        ([track()], "body is a JSON array; expected an object"),
        ("track", "body is a JSON string; expected an object"),
        ({"events": [track()]}, 'body has no batch: expected {"batch": [events]}'),
        ({"batch": {"0": track()}}, "batch is a JSON object; expected an array of events"),
        ({"batch": [track()], "context": "web"}, "context is a JSON string; expected an object"),
        ({"batch": [track()], "integrations": [1]}, "integrations is a JSON array; expected an object"),
        ({"batch": [1]}, "batch[0] is a JSON number; expected an event object"),
        ({"batch": [track(), "x"]}, "batch[1] is a JSON string; expected an event object"),
        ({"batch": [track(), None]}, "batch[1] is a JSON null; expected an event object"),
        ({"batch": [[track()]]}, "batch[0] is a JSON array; expected an event object"),
    ],
    ids=["top-level-array", "top-level-string", "no-batch", "batch-object", "context-string", "integrations-array",
         "item-number", "item-string", "item-null", "item-array"],
)
def test_malformed_envelope_is_400_naming_the_part(body, message):
    """A body or batch item of the wrong JSON type is a 400 naming the part and its type."""
    error = refused(body)
    assert error.status == HTTPStatus.BAD_REQUEST
    assert str(error) == message


@pytest.mark.parametrize("call_type", [None, "Track", "boom", 1, [], {}], ids=repr)
def test_batch_item_without_a_known_type_is_400_naming_its_index(call_type):
    """An item whose type is missing or not a Segment call is a 400 naming batch[i].type and the value."""
    item = {"event": "x", "userId": "u1"} if call_type is None else {"type": call_type, "event": "x", "userId": "u1"}
    error = refused({"batch": [track(), item]})
    assert error.status == HTTPStatus.BAD_REQUEST
    assert str(error) == f"batch[1].type is {call_type!r}; expected one of alias, group, identify, page, screen, track"


@pytest.mark.parametrize("call_type", ["boom", [], {}], ids=repr)
def test_single_call_with_an_unknown_type_is_400_naming_the_body(call_type):
    """A single call whose own type is not a Segment call is a 400 naming body.type and the value."""
    error = refused(track(type=call_type), single("track"))
    assert error.status == HTTPStatus.BAD_REQUEST
    assert str(error).startswith(f"body.type is {call_type!r}; expected one of ")


@pytest.mark.parametrize(
    "path_type,body_type,expected",
    [("track", None, "track"), ("alias", None, "alias"), ("track", "identify", "identify")],
    ids=["from-path", "from-alias-path", "body-wins"],
)
def test_single_call_takes_its_type_from_the_path_only_when_the_body_has_none(path_type, body_type, expected):
    """/v1/<call> supplies the type only when the body has none of its own."""
    body = {"userId": "u1", "previousId": "p1"} | ({"type": body_type} if body_type else {})
    [event] = decoded(body, single(path_type)).events
    assert event["type"] == expected


@pytest.mark.parametrize(
    "body,route,sent_at",
    [
        ({"batch": [track()], "sentAt": "2026-11-26T18:00:00.000Z"}, BATCH, "2026-11-26T18:00:00.000Z"),
        (track(sentAt="2026-11-26T18:00:01.000Z"), single("track"), "2026-11-26T18:00:01.000Z"),
        ({"batch": [track(sentAt="2026-11-26T18:00:02.000Z")]}, BATCH, None),
        ({"batch": [track()], "sentAt": 1764180000}, BATCH, None),
        (track(), single("track"), None),
    ],
    ids=["batch-level", "single-event", "item-level-in-batch-ignored", "non-string", "absent"],
)
def test_sent_at_comes_from_the_batch_or_the_single_event(body, route, sent_at):
    """sentAt is the batch's own, or a single call's own; anything but a string counts as absent."""
    assert decoded(body, route).sent_at == sent_at


@pytest.mark.parametrize(
    "context,source_ip,expected",
    [
        (None, SOURCE_IP, {"ip": SOURCE_IP}),
        ({"locale": "en"}, SOURCE_IP, {"locale": "en", "ip": SOURCE_IP}),
        ({"ip": "198.51.100.1"}, SOURCE_IP, {"ip": "198.51.100.1"}),
        ({"locale": "en"}, "", {"locale": "en"}),
        ("not-an-object", SOURCE_IP, "not-an-object"),
    ],
    ids=["no-context", "context-without-ip", "client-ip-kept", "no-source-ip", "non-object-context-untouched"],
)
def test_context_ip_comes_from_the_caller_only_when_absent(context, source_ip, expected):
    """context.ip is set from requestContext.http.sourceIp only when the event has none of its own."""
    event = track() if context is None else track(context=context)
    [out] = decoded({"batch": [event]}, source_ip=source_ip).events
    assert out["context"] == expected


def test_message_id_is_kept_when_present():
    """A client's messageId reaches Segment unchanged: it is what Segment dedupes on."""
    [event] = decoded({"batch": [track(messageId="ajs-next-1764180000000-6f1c")]}).events
    assert event["messageId"] == "ajs-next-1764180000000-6f1c"


def _message_id(event: dict[str, Any], route: Route = BATCH, **kwargs: Any) -> str:
    body = {"batch": [event]} if route is BATCH else event
    [out] = decoded(body, route, **kwargs).events
    return out["messageId"]


ANONYMOUS = {"type": "track", "event": "Order Completed", "userId": "u1", "properties": {"total": 10}}


@pytest.mark.parametrize(
    "other,kwargs,same",
    [
        (ANONYMOUS, {}, True),
        (ANONYMOUS, {"source_ip": "198.51.100.1"}, True),
        (ANONYMOUS, {"write_key": "another-client-key"}, True),
        (ANONYMOUS | {"properties": {"total": 11}}, {}, False),
        (ANONYMOUS | {"userId": "u2"}, {}, False),
    ],
    ids=["same-event", "other-caller-ip", "other-header-key", "other-property", "other-user"],
)
def test_missing_message_id_is_derived_from_the_event_alone(other, kwargs, same):
    """A missing messageId is derived from the event: equal for the same event from any IP, different otherwise."""
    first = _message_id(ANONYMOUS)
    assert re.fullmatch(r"registry-[0-9a-f]{32}", first)
    assert (first == _message_id(other, **kwargs)) is same


def test_derived_message_id_survives_a_retry_with_a_later_sent_at():
    """A retried single call carries a new sentAt (the send time) but must get the same derived messageId to dedupe."""
    first = _message_id(ANONYMOUS | {"sentAt": "2026-11-26T18:00:00.000Z"}, single("track"))
    retry = _message_id(ANONYMOUS | {"sentAt": "2026-11-26T18:00:05.000Z"}, single("track"))
    assert first == retry


# --- any body --------------------------------------------------------------------------------------------------

KEYS = st.sampled_from(["type", "batch", "writeKey", "context", "integrations", "messageId", "sentAt", "ip"]) | st.text(max_size=6)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(sorted(CALL_TYPES))
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=20)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=6)
BODIES = (
    JSON
    | OBJECTS
    | st.fixed_dictionaries(
        {"batch": st.lists(OBJECTS | JSON, max_size=4)},
        optional={name: JSON for name in ("writeKey", "context", "integrations", "sentAt")},
    )
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    body=BODIES,
    route=st.sampled_from([BATCH, single("track"), single("alias")]),
    write_key=st.sampled_from([None, CLIENT_KEY]),
)
def test_decode_returns_an_envelope_or_a_registry_error_for_any_json(body, route, write_key):
    """For any JSON body, decode() returns a well-formed Envelope or raises a 400/401, never another exception."""
    try:
        envelope = decoded(body, route, write_key=write_key)
    except (BadRequestError, UnauthorizedError) as e:
        assert e.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED)
        return
    assert envelope.write_keys and all(isinstance(key, str) and key for key in envelope.write_keys)
    assert envelope.sent_at is None or isinstance(envelope.sent_at, str)
    for event in envelope.events:
        assert event["type"] in CALL_TYPES
        assert "writeKey" not in event
        assert event["messageId"]
