"""HTTPS on loopback for tests and benchmarks: a certificate for localhost (tests/fixtures/tls, valid 2026-2125,
test-only: its key is public), servers' contexts with it, and trust in it."""

from __future__ import annotations

import ssl
from pathlib import Path

TLS_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tls"
CERTIFICATE = TLS_FIXTURES / "localhost.pem"
KEY = TLS_FIXTURES / "localhost-key.pem"
HOST = "localhost"  # the only name the certificate is for


def server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERTIFICATE, KEY)
    return context


def trust_bundle(directory: Path) -> Path:
    """A CA file holding the system's certificates and the fixture's, for SSL_CERT_FILE or AWS_CA_BUNDLE: clients
    then trust the loopback servers and still load as many certificates as they do against real endpoints."""
    system = ssl.get_default_verify_paths().cafile
    if system is None:
        raise RuntimeError("no system CA file (Debian: ca-certificates): clients would load none, unlike in Lambda")
    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(Path(system).read_bytes() + CERTIFICATE.read_bytes())
    return bundle
