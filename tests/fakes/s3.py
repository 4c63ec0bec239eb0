"""A stand-in for the registry's S3Client (s3.py): objects in a dict, and planned faults; and the real client
with moto's conditional writes made atomic, as S3's are.

get and list are served with the answers the real client gives: the body and ETag, NotModified for a matching
If-None-Match, None for a missing key; the objects under a prefix in key order, one request per page of up to
1,000. Planned faults are raised one request at a time, whichever comes next, as the S3Error the real client
raises once its retries are spent, with its wording.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reflekt_registry.errors import S3Error
from reflekt_registry.s3 import LIST_PAGE_KEYS, ListedObject, NotModified, S3Client, StoredObject


def answered(status: int, code: str) -> Callable[[str], S3Error]:
    return lambda where: S3Error(f"S3 answered {where} with HTTP {status} ({code})")


def unreachable(failure: str) -> Callable[[str], S3Error]:
    return lambda where: S3Error(f"cannot reach S3 for {where} within 3 s: {failure}")


# What a misbehaving S3 makes the client raise, by the name the tests use.
FAULTS: dict[str, Callable[[str], S3Error]] = {
    "500 InternalError": answered(500, "InternalError"),
    "503 SlowDown": answered(503, "SlowDown"),
    "403 AccessDenied": answered(403, "AccessDenied"),
    "read timeout": unreachable("ReadTimeoutError"),
    "connect timeout": unreachable("ConnectTimeoutError"),
    "no route": unreachable("NewConnectionError"),
}


def etag_of(body: bytes) -> str:
    return '"' + hashlib.md5(body).hexdigest() + '"'


@dataclass
class FakeS3:
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> body
    calls: list[dict[str, Any]] = field(default_factory=list)
    _faults: list[Callable[[str], S3Error]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, fault: str, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([FAULTS[fault]] * times)

    @property
    def faults_left(self) -> int:
        return len(self._faults)

    def _call(self, operation: str, bucket: str, key: str, **request: Any) -> None:
        with self._lock:
            self.calls.append({"operation": operation, "bucket": bucket, "key": key, **request})
            fault = self._faults.pop(0) if self._faults else None
        if fault:
            raise fault(f"{operation} s3://{bucket}/{key}")

    def get(self, bucket: str, key: str, if_none_match: str | None = None) -> StoredObject | NotModified | None:
        self._call("GET", bucket, key, if_none_match=if_none_match)
        if key not in self.objects:
            return None
        etag = etag_of(self.objects[key])
        if if_none_match == etag:
            return NotModified(etag)
        return StoredObject(self.objects[key], etag)

    def list(self, bucket: str, prefix: str = "", page_keys: int = LIST_PAGE_KEYS, delimiter: str = "") -> Iterator[ListedObject]:
        keys = sorted(key for key in self.objects
                      if key.startswith(prefix) and not (delimiter and delimiter in key[len(prefix):]))
        for start in range(0, max(len(keys), 1), page_keys):
            self._call("LIST", bucket, prefix, start=start)
            yield from (ListedObject(key, etag_of(self.objects[key]), len(self.objects[key]))
                        for key in keys[start:start + page_keys])


class AtomicConditionalPuts(S3Client):
    """The registry's S3Client (here on moto's server) with conditional PUTs made atomic, as S3 documents them.

    moto checks If-None-Match / If-Match and then writes, in two steps with no lock between them, so two requests
    can both pass the check; S3 lets exactly one win. Serialising the conditional PUTs this process sends restores
    S3's behaviour for tests whose contenders all run here; each PUT still goes to moto, which judges the condition.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._conditional = threading.Lock()

    def put(self, bucket: str, key: str, body: bytes, content_type: str = "application/json", *,
            if_match: str | None = None, if_none_match: str | None = None) -> str | None:
        if not (if_match or if_none_match):
            return super().put(bucket, key, body, content_type)
        with self._conditional:
            return super().put(bucket, key, body, content_type, if_match=if_match, if_none_match=if_none_match)
