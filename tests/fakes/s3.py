"""A stand-in for the boto3 S3 client that S3Source calls: objects in a dict, and planned faults; and a wrapper that
gives moto S3's atomic conditional writes.

get_object and list_objects_v2 are served, with the answers S3Source relies on: the body and ETag, 304 for a
matching IfNoneMatch, 404 NoSuchKey; keys under a prefix in key order, 1,000 a page with a continuation token.
Planned faults are raised one call at a time, whichever call comes next, as botocore would raise them.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

ENDPOINT = "https://s3.us-east-1.amazonaws.com"


# S3's page size for ListObjectsV2.
MAX_KEYS = 1000


def client_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"planned {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


# What a misbehaving S3 raises, by the name the tests use.
FAULTS: dict[str, Callable[[], Exception]] = {
    "500 InternalError": lambda: client_error(500, "InternalError"),
    "503 SlowDown": lambda: client_error(503, "SlowDown"),
    "403 AccessDenied": lambda: client_error(403, "AccessDenied"),
    "read timeout": lambda: ReadTimeoutError(endpoint_url=ENDPOINT),
    "connect timeout": lambda: ConnectTimeoutError(endpoint_url=ENDPOINT),
    "no route": lambda: EndpointConnectionError(endpoint_url=ENDPOINT),
}


@dataclass
class FakeS3:
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> body
    calls: list[dict[str, Any]] = field(default_factory=list)
    _faults: list[Callable[[], Exception]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, fault: str, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([FAULTS[fault]] * times)

    @property
    def faults_left(self) -> int:
        return len(self._faults)

    def _call(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(request)
            fault = self._faults.pop(0) if self._faults else None
        if fault:
            raise fault()

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        self._call(request)
        keys = sorted(key for key in self.objects if key.startswith(request.get("Prefix", "")))
        start = int(request.get("ContinuationToken", "0"))
        page = keys[start:start + MAX_KEYS]
        truncated = start + MAX_KEYS < len(keys)
        return {"Contents": [{"Key": key} for key in page], "KeyCount": len(page), "IsTruncated": truncated,
                **({"NextContinuationToken": str(start + MAX_KEYS)} if truncated else {})}

    def get_object(self, **request: Any) -> dict[str, Any]:
        self._call(request)
        key = request["Key"]
        if key not in self.objects:
            raise client_error(404, "NoSuchKey")
        etag = '"' + hashlib.md5(self.objects[key]).hexdigest() + '"'
        if request.get("IfNoneMatch") == etag:
            raise client_error(304, "304")  # what botocore raises for an unmodified object
        return {"Body": io.BytesIO(self.objects[key]), "ETag": etag}


class AtomicConditionalPuts:
    """A boto3 S3 client (here moto's) whose conditional PutObject is atomic, as S3 documents it to be.

    moto checks If-None-Match / If-Match and then writes, in two steps with no lock between them, so two threads can
    both pass the check; S3 lets exactly one win. Serialising the conditional puts restores S3's behaviour.
    """

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.Lock()

    def put_object(self, **request: Any) -> Any:
        if "IfNoneMatch" not in request and "IfMatch" not in request:
            return self._client.put_object(**request)
        with self._lock:
            return self._client.put_object(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
