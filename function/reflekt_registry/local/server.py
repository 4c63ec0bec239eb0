"""Runs the registry on a local port: each HTTP request becomes an API Gateway 2.0 event for the same handler,
except the inspection API under /registry/, which exists only here."""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import log
from ..config import S3Location, Settings
from ..errors import RegistryError
from ..handler import Registry
from ..request import MAX_ENCODED_BODY_BYTES, ApiGatewayEvent
from .aws import local_s3_client
from .inspection import PREFIX, InspectionApi, RecentEvents, record

DEFAULT_PORT = 8080
# How long each local drain may run: it wakes every SPOOL_DRAIN_INTERVAL_SECONDS and has no Lambda timeout.
LOCAL_DRAIN_SECONDS = 30.0


def to_api_gateway_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    """The event API Gateway HTTP API would deliver; like it, binary (e.g. gzip) bodies arrive base64-encoded."""
    path, _, query = target.partition("?")
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    if "content-encoding" in headers:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "domainName": headers.get("host", "localhost"),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(now * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class _FramingError(Exception):
    """The HTTP framing itself is broken or too large, so there is no request to hand to the registry."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _size(text: str | bytes, base: int) -> int:
    try:
        size = int(text, base)
    except ValueError:
        raise _FramingError(400, f"bad body length {text!r}") from None
    if size < 0:
        raise _FramingError(400, f"bad body length {text!r}")
    return size


def make_server(registry: Registry, host: str, port: int, recent: RecentEvents | None = None) -> ThreadingHTTPServer:
    """The server, with the registry's destinations wrapped so that the inspection API lists what they deliver."""
    inspection = InspectionApi(recent or RecentEvents())
    record(registry, inspection.recent)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as SDKs expect
        # Headers and body go out as separate writes; with Nagle on, the second waits ~40 ms for a delayed ACK.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            headers.setdefault("x-forwarded-proto", "http")
            try:
                body = self._read_body(headers)
            except _FramingError as e:
                self.close_connection = True  # the rest of the stream cannot be trusted to start a request
                self.send_error(e.status, str(e))
                return
            event = to_api_gateway_event(self.command, self.path, headers, body, self.client_address[0])
            response = inspection.answer(ApiGatewayEvent(event)) or registry.handle(event)
            payload = response["body"].encode()
            self.send_response(response["statusCode"])
            for name, value in response["headers"].items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _read_body(self, headers: dict[str, str]) -> bytes:
            if "chunked" in headers.get("transfer-encoding", "").lower():  # the Kotlin SDK streams its uploads
                chunks, size = [], 0
                while (chunk_size := _size(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                    size += chunk_size
                    if size > MAX_ENCODED_BODY_BYTES:
                        raise _FramingError(413, "body too large")
                    chunks.append(self.rfile.read(chunk_size))
                    self.rfile.readline()
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            length = _size(headers.get("content-length") or "0", 10)
            if length > MAX_ENCODED_BODY_BYTES:  # API Gateway would refuse it too; don't read it into memory
                raise _FramingError(413, "body too large")
            return self.rfile.read(length)

        do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the registry logs each request itself, as JSON

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


class BackgroundDrain:
    """Drains the spool folder every `interval` seconds on a daemon thread: the local stand-in for the schedule."""

    def __init__(self, drain: Callable[[], Any], interval: float):
        self.drain = drain
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-drain", daemon=True)

    def __enter__(self) -> BackgroundDrain:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.drain()
            except RegistryError:
                pass  # logged by the registry; the next round tries again
            except Exception:  # a dead thread would strand the spool until a restart
                log.get_logger().exception("spool drain failed")


def background_drain(registry: Registry, interval: float) -> BackgroundDrain | nullcontext[None]:
    if registry.spool is None:
        return nullcontext()
    return BackgroundDrain(lambda: registry.drain(LOCAL_DRAIN_SECONDS), interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev serve", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    parser.add_argument("--config", metavar="FILE", help="the configuration document (plans, controls, sources); "
                        "default: REGISTRY_CONFIG, else none")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(local=True, config_file=args.config)
        logger = log.configure(settings.debug)  # before the registry, which logs the document it reads
        s3 = local_s3_client(settings.s3, settings.aws_credentials) if isinstance(settings.schemas, S3Location) else None
        registry = Registry.from_settings(settings, s3=s3)
    except RegistryError as e:  # a bad setting or document, or a document that cannot be read
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    server = make_server(registry, args.host, args.port)
    document = registry.configuration.current().document
    folders = "<source>/" if document.declared else ""
    destination = (f"Segment at {settings.segment_api_host}" if settings.forwards_to_segment
                   else f"{settings.events_dir}/{folders}valid.jsonl and {settings.events_dir}/{folders}invalid.jsonl")
    print(f"reflekt-registry listening on http://{args.host}:{server.server_port}", file=sys.stderr)
    print(f"  schemas: {settings.schemas}", file=sys.stderr)
    print(f"  events:  {destination}", file=sys.stderr)
    if settings.spool is not None:
        print(f"  spool:   {settings.spool} (what Segment does not take; drained every {settings.spool_drain_interval:g} s)",
              file=sys.stderr)
    if document.declared:
        print(f"  sources: {', '.join(source.name for source in document.sources)} (from {settings.config}; "
              f"re-read every {settings.schema_cache_ttl:g} s)", file=sys.stderr)
    elif document.default_source is not None:
        print("  write keys: ANY key is accepted (set REGISTRY_WRITE_KEYS to enforce an allowlist)", file=sys.stderr)
    print(f"  inspect: http://{args.host}:{server.server_port}{PREFIX}/ (JSON at {PREFIX}/events and {PREFIX}/summary)",
          file=sys.stderr)
    logger.info("local server started", extra={"fields": {"port": server.server_port}})
    try:
        with background_drain(registry, settings.spool_drain_interval):
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

