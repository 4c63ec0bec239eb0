"""A loopback fake of Segment's HTTP Tracking API that records what each source receives and can misbehave.

It enforces what Segment documents: Basic auth or a body writeKey, JSON bodies, 500 KB per batch and 32 KB per
event (else 400), and answers 200 {"success": true}. Like Segment, it keeps only the first 2,500 events of a batch
and still answers 200. Planned faults are consumed one request at a time.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BATCH_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
# Segment answers 200 to a longer batch but drops the events past this many.
MAX_BATCH_EVENTS = 2_500


@dataclass
class Fault:
    status: int | None = None  # answer this status
    retry_after: str | None = None
    delay: float = 0.0  # wait this long before answering (or before closing)
    close: bool = False  # drop the connection without an answer


@dataclass
class Received:
    write_key: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.body.get("batch", [])


@dataclass
class FakeSegment:
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    connections: int = 0
    dropped: int = 0  # events past MAX_BATCH_EVENTS, answered 200 and lost
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- planning faults ------------------------------------------------------------------------------------
    def fail(self, times: int = 1, status: int = 500, retry_after: str | None = None) -> None:
        self._plan(times, Fault(status=status, retry_after=retry_after))

    def hang(self, times: int = 1, seconds: float = 30.0) -> None:
        self._plan(times, Fault(delay=seconds, close=True))

    def slow(self, times: int = 1, seconds: float = 1.0) -> None:
        self._plan(times, Fault(delay=seconds))

    def close(self, times: int = 1) -> None:
        self._plan(times, Fault(close=True))

    def _plan(self, times: int, fault: Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.attempts += 1
            return self._faults.pop(0) if self._faults else None

    # -- what arrived ---------------------------------------------------------------------------------------
    def events(self, write_key: str) -> list[dict[str, Any]]:
        return [event for request in self.received if request.write_key == write_key for event in request.events]

    def message_ids(self, write_key: str) -> list[str]:
        return [event.get("messageId") for event in self.events(write_key)]

    def by_key(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for request in self.received:
            counts[request.write_key] += len(request.events)
        return dict(counts)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> FakeSegment:
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with fake._lock:
                    fake.connections += 1
                super().process_request(request, client_address)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every answer waits ~40 ms for a delayed ACK, as Segment's never do

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                fault = fake._next_fault()
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.close:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault and fault.status:
                    headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
                    return self._answer(fault.status, {"success": False, "message": "planned fault"}, headers)
                self._accept(raw)

            def _accept(self, raw: bytes) -> None:
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                if len(raw) > MAX_BATCH_BYTES:
                    return self._answer(400, {"success": False, "message": "batch over 500 KB"})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._answer(400, {"success": False, "message": "invalid JSON"})
                for event in body.get("batch", [body]):
                    if len(json.dumps(event, separators=(",", ":"))) > MAX_EVENT_BYTES:
                        return self._answer(400, {"success": False, "message": "event over 32 KB"})
                write_key = self._write_key(body)
                if not write_key:
                    return self._answer(401, {"success": False, "message": "no write key"})
                batch = body.get("batch")
                with fake._lock:
                    if isinstance(batch, list) and len(batch) > MAX_BATCH_EVENTS:
                        fake.dropped += len(batch) - MAX_BATCH_EVENTS
                        body = {**body, "batch": batch[:MAX_BATCH_EVENTS]}
                    fake.received.append(Received(write_key, self.path, dict(self.headers), body))
                self._answer(200, {"success": True})

            def _write_key(self, body: dict[str, Any]) -> str | None:
                auth = self.headers.get("authorization", "")
                if auth.startswith("Basic "):
                    return base64.b64decode(auth[6:]).decode().partition(":")[0]
                return body.get("writeKey")

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = Server((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"
