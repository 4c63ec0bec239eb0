"""The HTTP clients' pools: one TLS context for every https connection, verifying certificates and host names."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tls_support import CERTIFICATE, server_context
from reflekt_registry.connections import pool, tls_context


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[None]:
    """Each test starts without the process's context and leaves none made under its own trust settings."""
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the handshakes the verification tests refuse end here, as they should


@pytest.fixture
def tls_server() -> Iterator[tuple[int, Path]]:
    """An https server on loopback whose certificate, signed by itself, names localhost only: (port, certificate)."""
    server = _QuietServer(("127.0.0.1", 0), _Ok)
    server.socket = server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], CERTIFICATE
    server.shutdown()
    server.server_close()


def test_https_pools_share_one_context_and_its_connections_use_it(tls_server, monkeypatch):
    """Two pools, several connections at once: every TLS socket was made from the one context, so the CA
    certificates were loaded once (urllib3 alone loads them again for each connection)."""
    port, certificate = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    url = f"https://localhost:{port}/"
    responses = [p.request("GET", url, preload_content=False) for p in (pool(url, 2), pool(url, 2)) for _ in range(2)]
    assert [response.status for response in responses] == [200] * 4
    assert len({id(response.connection) for response in responses}) == 4
    assert all(response.connection.sock.context is tls_context() for response in responses)
    assert tls_context.cache_info().misses == 1


def test_the_shared_context_verifies_the_certificate(tls_server):
    """A certificate no trusted CA signed is refused: sharing the context did not switch verification off."""
    port, _ = tls_server
    with pytest.raises(urllib3.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        pool(f"https://localhost:{port}/", 1).request("GET", f"https://localhost:{port}/")


def test_the_shared_context_verifies_the_host_name(tls_server, monkeypatch):
    """A trusted certificate for another name is refused too."""
    port, certificate = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    with pytest.raises(urllib3.exceptions.SSLError, match="IP address mismatch|doesn't match|hostname mismatch"):
        pool(f"https://127.0.0.1:{port}/", 1).request("GET", f"https://127.0.0.1:{port}/")


def test_a_plain_http_pool_never_makes_the_context():
    """Stand-ins on loopback (moto, the fake Segment) speak plain http: loading the CA certificates would be waste."""
    plain = pool("http://127.0.0.1:9/", 4, hosts=2)
    assert plain.connection_pool_kw.get("ssl_context") is None
    assert tls_context.cache_info().currsize == 0
