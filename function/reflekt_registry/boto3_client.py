"""The boto3 S3 client the schema store and the spool share until the boto3-free s3.py (issue 12) replaces it."""

from __future__ import annotations

from typing import Any

from .config import S3Location


class BucketPrefix:
    """Objects under `location`'s prefix, reached through a boto3 client made on first use with the timeouts below."""

    # Short timeouts and few retries: a caller is waiting (for schemas, a cached one can be served meanwhile).
    CONNECT_TIMEOUT_SECONDS = 1.0
    READ_TIMEOUT_SECONDS = 2.0
    MAX_ATTEMPTS = 2

    def __init__(self, location: S3Location, client: Any = None):
        self.location = location
        self._client = client

    def __str__(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"

    @property
    def client(self) -> Any:
        # boto3 takes longer to import than everything else together: only pay for it once S3 is needed.
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                region_name=self.location.region,
                config=Config(connect_timeout=self.CONNECT_TIMEOUT_SECONDS, read_timeout=self.READ_TIMEOUT_SECONDS,
                              retries={"mode": "standard", "max_attempts": self.MAX_ATTEMPTS}),
            )
        return self._client
