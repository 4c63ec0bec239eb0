"""S3 for the Lambda path without boto3: SigV4-signed GET (conditional), LIST, PUT and DELETE over one urllib3 pool.

boto3 takes longer to import and set up than the rest of a cold start together, and shipping urllib3 beside the
runtime's boto3 is a mix AWS warns against. The registry needs five S3 calls, so it signs them itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple, Protocol
from urllib.parse import quote

import urllib3

from . import __version__, connections
from .config import Credentials, S3Endpoint, S3Location
from .errors import S3Error
from .retry import RetryPolicy, send

ALGORITHM = "AWS4-HMAC-SHA256"
# Short timeouts and one retry: a caller is waiting, and a cached copy can usually be served meanwhile.
S3_RETRY_POLICY = RetryPolicy(attempts=2, budget=3.0, connect_timeout=1.0, read_timeout=2.0)
# ListObjectsV2's own page limit; asking for it explicitly keeps S3-compatible stand-ins from paging smaller.
LIST_PAGE_KEYS = 1000
# One bucket (the registry's) and, briefly, a second host. Connections kept to each: the schema store fetches up
# to this many schemas at once (a cold request rarely names more), and spool writes overlap.
POOL_HOSTS = 2
POOL_CONNECTIONS_PER_HOST = 8
# ListObjectsV2 and error bodies are XML in this namespace.
XML_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
USER_AGENT = f"reflekt-registry/{__version__}"


class CredentialSource(Protocol):
    def current(self) -> Credentials:
        """Credentials valid now; a refreshing source (local profiles, SSO) may return new ones each time."""


class StoredObject(NamedTuple):
    """An object as GET returns it (config.S3Object is where one lives)."""

    body: bytes
    etag: str  # equal ETags mean equal bodies


class NotModified(NamedTuple):
    """The object still has the ETag the caller sent in If-None-Match."""

    etag: str


class ListedObject(NamedTuple):
    key: str
    etag: str
    size: int


# -- SigV4 (pure) ---------------------------------------------------------------------------------------------------

def canonical_request(method: str, path: str, query: Iterable[tuple[str, str]], headers: Iterable[tuple[str, str]],
                      payload_hash: str) -> tuple[str, str]:
    """The canonical request and its signed-headers list. `path` and `query` are raw (not yet percent-encoded);
    S3 encodes the path once and does not normalise it, so neither is done here."""
    canonical_query = "&".join(f"{name}={value}" for name, value in
                               sorted((quote(name, safe=""), quote(value, safe="")) for name, value in query))
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower().strip(), []).append(" ".join(value.split()))
    names = sorted(merged)
    canonical_headers = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    signed = ";".join(names)
    return "\n".join((method, quote(path, safe="/"), canonical_query, canonical_headers, signed, payload_hash)), signed


def authorization(method: str, path: str, query: Iterable[tuple[str, str]], headers: Iterable[tuple[str, str]],
                  payload_hash: str, credentials: Credentials, region: str, service: str, amz_date: str) -> str:
    """The Authorization header value. `headers` are every header to sign, including host and x-amz-date."""
    request, signed = canonical_request(method, path, query, headers, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()))
    key = ("AWS4" + credentials.secret_access_key).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"


def amz_date(epoch_seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch_seconds))


# -- Addressing (pure) ----------------------------------------------------------------------------------------------

def is_virtual_host_compatible(bucket: str) -> bool:
    """Whether the bucket can be a host label under TLS: a dotted name would not match S3's wildcard certificate."""
    return (3 <= len(bucket) <= 63 and "." not in bucket and bucket == bucket.lower()
            and bucket.replace("-", "").isalnum() and bucket[0].isalnum() and bucket[-1].isalnum())


def object_url(endpoint: S3Endpoint, bucket: str, key: str) -> tuple[str, str, str]:
    """(origin, host, raw path) of an object (key "" for the bucket itself), path-style or virtual-hosted."""
    if endpoint.url:
        scheme, _, host = endpoint.url.partition("://")
    else:
        suffix = "amazonaws.com.cn" if (endpoint.region or "").startswith("cn-") else "amazonaws.com"
        scheme, host = "https", f"s3.{endpoint.region}.{suffix}"
    style = endpoint.addressing_style
    if style == "auto":
        style = "virtual" if not endpoint.url and is_virtual_host_compatible(bucket) else "path"
    if style == "virtual":
        host = f"{bucket}.{host}"
        path = "/" + key
    else:
        path = f"/{bucket}/{key}"
    return f"{scheme}://{host}", host, path


def signed_request(endpoint: S3Endpoint, credentials: Credentials, epoch_seconds: float, method: str, bucket: str,
                   key: str, query: list[tuple[str, str]], headers: Mapping[str, str], body: bytes) -> tuple[str, dict[str, str]]:
    """The URL and the signed headers of one S3 request."""
    if {".", ".."} & set(key.split("/")):  # urllib3 would resolve them away, and the signature with them
        raise ValueError(f"S3 key {key!r} has a '.' or '..' segment, which cannot be sent as is")
    origin, host, path = object_url(endpoint, bucket, key)
    url = origin + quote(path, safe="/")
    if query:
        url += "?" + "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query)
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {"Host": host, "X-Amz-Content-SHA256": payload_hash, "X-Amz-Date": amz_date(epoch_seconds), **headers}
    if credentials.session_token:
        signed["X-Amz-Security-Token"] = credentials.session_token
    assert endpoint.region is not None
    signed["Authorization"] = authorization(method, path, query, signed.items(), payload_hash, credentials,
                                            endpoint.region, "s3", signed["X-Amz-Date"])
    return url, signed


# -- The client -----------------------------------------------------------------------------------------------------

class S3Client:
    """One S3 endpoint through one connection pool, kept across warm invocations; every request signed with SigV4.

    Raises S3Error when S3 cannot be reached within the retry budget or answers with an error; a missing object
    is not an error (None), a missing bucket is.
    """

    def __init__(
        self,
        endpoint: S3Endpoint,
        credentials: CredentialSource,
        policy: RetryPolicy = S3_RETRY_POLICY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        pool: urllib3.PoolManager | None = None,
    ):
        if endpoint.region is None:
            raise ValueError("S3Client needs the bucket's region: requests are signed for it")
        self.endpoint = endpoint
        self.credentials = credentials
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.pool = pool or connections.pool(endpoint.url or "https://", POOL_CONNECTIONS_PER_HOST, POOL_HOSTS)

    def get(self, bucket: str, key: str, if_none_match: str | None = None) -> StoredObject | NotModified | None:
        """The object; NotModified when its ETag is still `if_none_match`; None when there is no such key."""
        headers = {"If-None-Match": if_none_match} if if_none_match else {}
        response = self._request("GET", bucket, key, headers=headers)
        if response.status == 304 and if_none_match:
            return NotModified(if_none_match)
        if response.status == 404 and _error_code(response.data) == "NoSuchKey":
            return None
        self._expect(response, 200, "GET", bucket, key)
        return StoredObject(response.data, response.headers.get("ETag", ""))

    def list(self, bucket: str, prefix: str = "", page_keys: int = LIST_PAGE_KEYS, delimiter: str = "") -> Iterator[ListedObject]:
        """Every object under the prefix, in key order; one request per page, made only as the caller reads on.
        With a delimiter, only the objects whose key has none of it past the prefix (no "folders")."""
        token = None
        while True:
            query = [("list-type", "2"), ("max-keys", str(page_keys)), ("prefix", prefix)]
            if delimiter:
                query.append(("delimiter", delimiter))
            if token:
                query.append(("continuation-token", token))
            response = self._request("GET", bucket, "", query=query)
            self._expect(response, 200, "LIST", bucket, prefix)
            objects, token = _parse_list_page(response.data)
            yield from objects
            if not token:
                return

    def put(self, bucket: str, key: str, body: bytes, content_type: str = "application/json", *,
            if_match: str | None = None, if_none_match: str | None = None) -> str | None:
        """Stores the object and returns its new ETag. With a condition (If-Match an ETag; If-None-Match "*", to
        create only), returns None instead when the object is not as required: a lock or compare-and-swap lost."""
        headers = {"Content-Type": content_type}
        if if_match:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        response = self._request("PUT", bucket, key, body=body, headers=headers)
        conditional = bool(if_match or if_none_match)
        # 412: the condition failed; 409: a concurrent conditional write won; 404: If-Match on an object now gone.
        if conditional and (response.status in (409, 412) or (response.status == 404 and _error_code(response.data) == "NoSuchKey")):
            return None
        self._expect(response, 200, "PUT", bucket, key)
        return response.headers.get("ETag", "")

    def delete(self, bucket: str, key: str) -> None:
        """Removes the object; removing one that does not exist is not an error (S3 answers 204 either way)."""
        response = self._request("DELETE", bucket, key)
        self._expect(response, 204, "DELETE", bucket, key)

    def _request(self, method: str, bucket: str, key: str, *, query: list[tuple[str, str]] | None = None,
                 headers: Mapping[str, str] | None = None, body: bytes = b"") -> urllib3.BaseHTTPResponse:
        url, signed = signed_request(self.endpoint, self.credentials.current(), self.now(), method, bucket, key,
                                     query or [], headers or {}, body)
        signed["User-Agent"] = USER_AGENT  # unsigned: proxies may rewrite it
        outcome = send(self.pool, method, url, body or None, signed, self.policy, self.clock, self.sleep, "S3")
        if outcome.failure is not None:
            raise S3Error(f"cannot reach S3 for {method} s3://{bucket}/{key} within {self.policy.budget:g} s: {outcome.failure}")
        return outcome.response

    @staticmethod
    def _expect(response: urllib3.BaseHTTPResponse, status: int, operation: str, bucket: str, key: str) -> None:
        if response.status != status:
            code = _error_code(response.data) or "no error code"
            raise S3Error(f"S3 answered {operation} s3://{bucket}/{key} with HTTP {response.status} ({code})")


class BucketPrefix:
    """Objects under `location`'s prefix through the shared client: the base of the schema source and the spool."""

    def __init__(self, location: S3Location, client: S3Client):
        self.location = location
        self.client = client

    def __str__(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"


def _error_code(body: bytes) -> str | None:
    """The <Code> of an S3 error document; None when the body is not one (a HEAD, a proxy's page)."""
    start, end = body.find(b"<Code>"), body.find(b"</Code>")
    if start < 0 or end < start:
        return None
    return body[start + len(b"<Code>"):end].decode(errors="replace")


def _parse_list_page(body: bytes) -> tuple[list[ListedObject], str | None]:
    """The objects of one ListObjectsV2 page and the token of the next page (None on the last)."""
    # Imported here: GETs, the cold path's only S3 calls, never need an XML parser.
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise S3Error(f"S3 answered a LIST with a body that is not XML: {e}") from None
    objects = [ListedObject(item.findtext(f"{XML_NAMESPACE}Key", ""), item.findtext(f"{XML_NAMESPACE}ETag", ""),
                            int(item.findtext(f"{XML_NAMESPACE}Size", "0")))
               for item in root.iter(f"{XML_NAMESPACE}Contents")]
    truncated = root.findtext(f"{XML_NAMESPACE}IsTruncated", "false") == "true"
    return objects, root.findtext(f"{XML_NAMESPACE}NextContinuationToken") if truncated else None
