"""The connection pools of the registry's HTTP clients (Segment, S3), with one TLS context for all of them."""

from __future__ import annotations

import functools
import ssl

import urllib3
from urllib3.util.ssl_ import create_urllib3_context


def pool(url: str, connections: int, hosts: int = 1) -> urllib3.PoolManager:
    """A pool for requests to URLs like `url`, keeping up to `connections` connections to each of up to `hosts`
    hosts. It never retries on its own (retry.send does). Over https it verifies with the shared context; over
    plain http (stand-ins on loopback) that context is never made."""
    context = tls_context() if url.startswith("https://") else None
    return urllib3.PoolManager(num_pools=hosts, maxsize=connections, retries=False, ssl_context=context)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """urllib3's own context (certificates and host names verified) with the system's CA certificates, made once a
    process. Left to itself, urllib3 makes a context and loads those certificates for every connection it opens:
    ~20 ms of CPU each (OpenSSL 3 parsing ~140 certificates), and a cold start opens several."""
    context = create_urllib3_context()
    context.load_default_certs()
    return context
