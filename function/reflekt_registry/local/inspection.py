"""What the local server forwarded, for app teams to inspect and assert on: a bounded store of recent events,
with their outcome and violations, and the HTTP API and page over it under /registry/. Never in the Lambda."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from ..errors import BadRequestError, MethodNotAllowedError, NotFoundError, RegistryError
from ..document import Source
from ..forwarder import Destination
from ..handler import Registry
from ..metrics import listed_under
from ..plans import plan_of
from ..request import ApiGatewayEvent
from ..responses import PREFLIGHT, Response, error_response
from ..routing import Outlets
from ..validator import ANNOTATION_KEY, SCHEMA_ID_FIELD, VALIDATED_FIELD, data_of

# Enough for a CI run or an afternoon of clicking through an app, and bounded: at Segment's 32 KB per event
# the store never holds more than about 32 MB. Counts in the summary are not bounded by it.
MAX_RECENT_EVENTS = 1_000
VALID, INVALID = "valid", "invalid"
STATUSES = (VALID, INVALID)
PREFIX = "/registry"
FILTERS = ("status", "source", "schema_id", "event", "type", "plan")
PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class SeenEvent:
    """One event as the local server forwarded it: a record of /registry/events."""

    id: int  # unique for the server's lifetime, resets included, so a page can tell events apart
    forwarded_at: str
    status: str
    source: str  # the name of the source whose key the event came with
    type: str
    event: str | None  # the track event, or the page or screen name
    schema_id: str | None
    message_id: str | None
    violations: list[dict[str, str]]  # [{path, keyword, message}] as in context.reflekt
    payload: dict[str, Any]  # the event exactly as forwarded, annotations included
    plan: str | None  # the tracking plan of its schema ("jaffle_shop/")
    unplanned: bool  # no schema has its name in the plans (and the controls let it through, or blocked it)
    omitted: list[str]  # properties or traits the controls removed before forwarding it

    @classmethod
    def of(cls, id: int, status: str, source: str, event: dict[str, Any], forwarded_at: str) -> SeenEvent:
        # validator.annotate wrote the record into every invalid event (even an oversized one's stand-in) and into
        # valid ones it decided something about; a client cannot forge it, since payload.decode removes it.
        context = event.get("context")
        annotation = context.get(ANNOTATION_KEY) if isinstance(context, dict) else None
        if isinstance(annotation, dict):
            schema_id, violations = annotation["schemaId"], annotation["violations"]
        else:
            payload = data_of(event)[0] if event["type"] in VALIDATED_FIELD else None  # where the registry read it
            schema_id, violations, annotation = payload.get(SCHEMA_ID_FIELD) if isinstance(payload, dict) else None, [], {}
        return cls(id, forwarded_at, status, source, event["type"], event.get("event") or event.get("name"), schema_id,
                   event.get("messageId"), violations, event, plan_of(schema_id) if isinstance(schema_id, str) else None,
                   annotation.get("unplanned", False), annotation.get("omitted", []))

    @property
    def schema_key(self) -> str:
        return listed_under(self.schema_id, self.unplanned)


class RecentEvents:
    """The latest forwarded events, newest first, and counts per schema since the server started or was reset."""

    def __init__(self, capacity: int = MAX_RECENT_EVENTS, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._events: deque[SeenEvent] = deque(maxlen=capacity)
        self._counts: Counter[tuple[str, str, str]] = Counter()  # (source, schema key, status) -> events
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, status: str, source: str, events: Sequence[dict[str, Any]]) -> None:
        forwarded_at = datetime.fromtimestamp(self.clock(), timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            for event in events:
                seen = SeenEvent.of(self._next_id, status, source, event, forwarded_at)
                self._next_id += 1
                self._events.appendleft(seen)
                self._counts[source, seen.schema_key, status] += 1

    def matching(self, status: str | None = None, source: str | None = None, schema_id: str | None = None,
                 event: str | None = None, type: str | None = None, plan: str | None = None,
                 limit: int | None = None) -> list[SeenEvent]:
        """Newest first; every given filter must match, and at most `limit` are returned."""
        wanted = {"status": status, "source": source, "schema_key": schema_id, "event": event, "type": type, "plan": plan}
        with self._lock:
            found = [seen for seen in self._events
                     if all(value is None or getattr(seen, name) == value for name, value in wanted.items())]
        return found[:limit]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        schemas: dict[str, dict[str, int]] = {}
        sources: dict[str, dict[str, Any]] = {}
        for (source, schema, status), count in sorted(counts.items()):
            schemas.setdefault(schema, dict.fromkeys(STATUSES, 0))[status] += count
            of_source = sources.setdefault(source, {**dict.fromkeys(STATUSES, 0), "schemas": {}})
            of_source[status] += count
            of_source["schemas"].setdefault(schema, dict.fromkeys(STATUSES, 0))[status] = count
        by_status = {status: sum(s[status] for s in schemas.values()) for status in STATUSES}
        return {"total": sum(by_status.values()), **by_status, "schemas": schemas, "sources": sources}

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._counts.clear()


class Recording(NamedTuple):
    """A destination that notes each event it delivered, as `status` of `source`, in the recent events. A value,
    so that equal destinations stay equal once wrapped and the Forwarder still batches them together."""

    inner: Destination
    status: str
    source: str
    recent: RecentEvents

    def send(self, lines: Sequence[bytes], sent_at: str | None) -> None:
        self.inner.send(lines, sent_at)
        # Only after delivery: an event Segment refused is retried by the SDK and must not be listed twice.
        self.recent.add(self.status, self.source, [json.loads(line) for line in lines])


class RecordingOutlets(NamedTuple):
    """The registry's outlets, with every destination they give noting what it delivered in `recent`."""

    inner: Outlets
    recent: RecentEvents

    def for_source(self, source: Source, sent_with: str) -> tuple[Destination, Destination]:
        valid, invalid = self.inner.for_source(source, sent_with)
        return Recording(valid, VALID, source.name, self.recent), Recording(invalid, INVALID, source.name, self.recent)


def record(registry: Registry, recent: RecentEvents) -> None:
    """Has every destination of the registry note in `recent` each event it delivers."""
    registry.outlets = RecordingOutlets(registry.outlets, recent)


def _events(recent: RecentEvents, query: dict[str, str]) -> Response:
    unknown = sorted(set(query) - {*FILTERS, "limit"})
    if unknown:
        raise BadRequestError(f"unknown filter {unknown[0]!r}; filter on {', '.join(FILTERS)} or limit")
    if query.get("status") not in (None, *STATUSES):
        raise BadRequestError(f"status={query['status']!r}; expected valid or invalid")
    found = recent.matching(**{name: query.get(name) for name in FILTERS}, limit=_limit(query.get("limit")))
    return Response(HTTPStatus.OK, {"events": [asdict(seen) for seen in found]})


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        raise BadRequestError(f"limit={raw!r}; expected a positive whole number")
    return int(raw)


def _summary(recent: RecentEvents, query: dict[str, str]) -> Response:
    return Response(HTTPStatus.OK, recent.summary())


def _reset(recent: RecentEvents, query: dict[str, str]) -> Response:
    recent.reset()
    return Response(HTTPStatus.OK, recent.summary())


def _page(recent: RecentEvents, query: dict[str, str]) -> Response:
    return Response(HTTPStatus.OK, PAGE, content_type=HTML)


# The whole API: the name after /registry/, its method and its handler.
ROUTES: dict[str, tuple[str, Callable[[RecentEvents, dict[str, str]], Response]]] = {
    "": ("GET", _page),
    "events": ("GET", _events),
    "summary": ("GET", _summary),
    "reset": ("POST", _reset),
}


class InspectionApi:
    def __init__(self, recent: RecentEvents):
        self.recent = recent

    def answer(self, event: ApiGatewayEvent) -> dict[str, Any] | None:
        """The response to a /registry/ request, in API Gateway's shape; None for any other path.

        Only /registry and /registry/<name> are answered here. Every Segment path ends in two segments or more
        (v1/<call>, projects/<key>/settings), so one behind a /registry stage prefix still reaches the registry.
        """
        path = event.path
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            return None
        name = path[len(PREFIX):].strip("/")
        if "/" in name:
            return None
        try:
            reply = self._dispatch(event, name)
        except RegistryError as e:
            reply = error_response(e)
        return reply.to_proxy(event)

    def _dispatch(self, event: ApiGatewayEvent, name: str) -> Response:
        if name not in ROUTES:
            listed = ", ".join(f"{method} {PREFIX}/{route}" for route, (method, _) in ROUTES.items())
            raise NotFoundError(f"no inspection route {event.path!r}; use one of {listed}")
        method, handler = ROUTES[name]
        if event.method == "OPTIONS":
            return PREFLIGHT
        if event.method != method:
            raise MethodNotAllowedError(f"{event.method} is not allowed on {event.path!r}; use {method}")
        return handler(self.recent, dict(parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True)))
