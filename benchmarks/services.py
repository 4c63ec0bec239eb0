"""The loopback services the benchmarks talk to, each in a process of its own: the fake Segment (tests/fakes) and a
moto S3 server. Out of the benchmark's process, their work never holds its GIL.

The parent starts `python services.py segment|moto|proxy ...`, reads the service's URL from its first line of output,
and then asks it questions one line at a time over stdin/stdout; closing stdin stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOOPBACK = "127.0.0.1"
# A service starts in well under a second; this only stops a broken one from hanging the run.
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 5
BUCKET = "reflekt-registry-bench"
REGION = "us-east-1"
# moto accepts any credentials; fixed dummy ones keep boto3 from looking for real ones.
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no AWS settings from the shell (so nothing can reach real AWS), dummy ones."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.pop("PYTHONPATH", None)
    # The zip ships bytecode, so fresh processes run from source with their caches too (a shell that disables
    # writing them would time a compile of every changed module instead); the zip benchmark sets it explicitly.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, **DUMMY_AWS, **extra}


class ServiceProcess:
    kind = ""

    def __init__(self, *arguments: str) -> None:
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), self.kind, *arguments],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=clean_env(PYTHONPATH=os.pathsep.join([str(REPO / "function"), str(REPO / "tests")])),
        )
        self.url = self._read_line()

    def ask(self, question: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(question + "\n")
        self._process.stdin.flush()
        return self._read_line()

    def _read_line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._log.seek(0)
            raise RuntimeError(f"the {self.kind} service died: {self._log.read().decode(errors='replace')[-2000:]}")
        return line.strip()

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SegmentService(ServiceProcess):
    """tests/fakes/segment.py's FakeSegment, which counts the TCP connections it accepts."""

    kind = "segment"

    def connections(self) -> int:
        return int(self.ask("connections"))

    def events_by_key(self) -> dict[str, int]:
        return json.loads(self.ask("by_key"))

    def reset(self) -> None:
        """Forgets what it received (not its connection count), so a long run does not fill memory."""
        self.ask("reset")


class MotoService(ServiceProcess):
    kind = "moto"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def publish(self, documents: dict[str, bytes], prefix: str = "schemas/") -> None:
        """Lays the schemas out as the original registry expected: s3://BUCKET/schemas/<$id>."""
        client = self.client()
        client.create_bucket(Bucket=BUCKET)
        for schema_id, body in documents.items():
            client.put_object(Bucket=BUCKET, Key=prefix + schema_id, Body=body, ContentType="application/json")


class ProxyService(ServiceProcess):
    """An HTTPS front for a loopback service, reached as the Lambda reaches S3 and Segment: over TLS (the fixture's
    certificate for localhost), on connections kept alive (moto closes each one after its answer; S3 does not),
    and with each answer held back `delay` seconds, the round trip to an in-region endpoint."""

    kind = "proxy"

    def __init__(self, upstream: str, delay: float) -> None:
        super().__init__(upstream, str(delay))


def _answer_promptly() -> None:
    """Sends each response segment at once (TCP_NODELAY), as production front ends do.

    http.server writes a response's headers and body separately; with Nagle's algorithm on, the body waits for the
    client's delayed ACK of the headers, and every request stalls ~40 ms on Linux. Real Segment and S3 do not
    stall like that, so the stand-ins must not either, or the stall dwarfs everything the benchmarks measure.
    """
    import socketserver

    socketserver.StreamRequestHandler.disable_nagle_algorithm = True


def _serve_segment() -> None:
    from fakes.segment import FakeSegment

    _answer_promptly()

    with FakeSegment(host=LOOPBACK) as fake:
        answers = {
            "connections": lambda: fake.connections,
            "by_key": lambda: json.dumps(fake.by_key()),
            "reset": lambda: fake.received.clear() or "ok",
        }
        _answer(fake.url, answers)


def _serve_moto() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    _answer_promptly()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        _answer(f"http://{host}:{port}", {})
    finally:
        server.stop()


def _serve_proxy(upstream: str, delay: str) -> None:
    import http.client
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import urlsplit

    from tls_support import HOST, server_context

    target, pause = urlsplit(upstream), float(delay)
    # Hop-by-hop or rewritten: the proxy keeps its own connection open and sends the length it read.
    dropped = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}

    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            upstream_connection = http.client.HTTPConnection(target.hostname, target.port)
            upstream_connection.request(self.command, self.path, body=self.rfile.read(length) if length else None,
                                        headers=dict(self.headers.items()))
            answer = upstream_connection.getresponse()
            body = answer.read()
            upstream_connection.close()
            time.sleep(pause)
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in dropped:
                    self.send_header(name, value)
            # A HEAD's answer has no body but says how long the object is.
            self.send_header("Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = relay

        def log_message(self, format: str, *args: Any) -> None:
            pass

    _answer_promptly()
    server = ThreadingHTTPServer((LOOPBACK, 0), Relay)
    server.daemon_threads = True
    # Each handshake in its connection's own thread, as a server with many cores would take them.
    server.socket = server_context().wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _answer(f"https://{HOST}:{server.server_address[1]}", {})
    finally:
        server.shutdown()


def _answer(url: str, answers: dict[str, Any]) -> None:
    print(url, flush=True)
    for line in sys.stdin:
        print(answers[line.strip()](), flush=True)


if __name__ == "__main__":
    {"segment": _serve_segment, "moto": _serve_moto, "proxy": _serve_proxy}[sys.argv[1]](*sys.argv[2:])
