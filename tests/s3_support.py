"""Publishing the example Reflekt project into a (moto) bucket, as `publish` does for users."""

from __future__ import annotations

from typing import Any

import urllib3

from helpers import EXAMPLE_SCHEMAS
from reflekt_registry.s3 import POOL_CONNECTIONS_PER_HOST, POOL_HOSTS
from reflekt_registry.tools.publish import check_file, find_schemas, upload

BUCKET = "reflekt-registry-test"
# What the Lambda runtime sets from the function's role and region, for tests that build Settings from a dict.
RUNTIME_ENV = {
    "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_SESSION_TOKEN": "token",
    "AWS_REGION": "eu-west-1",
}
PREFIX = "schemas/"


def create_bucket_with_schemas(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    upload([check_file(path, EXAMPLE_SCHEMAS) for path in find_schemas(EXAMPLE_SCHEMAS)], BUCKET, PREFIX)


def remove_bucket(s3: Any) -> None:
    """Empties and deletes the bucket: every request to it then fails with NoSuchBucket."""
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", ()):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def lambda_env(segment_url: str, **extra: str) -> dict[str, str]:
    """The environment Terraform gives the Lambda."""
    from helpers import CLIENT_KEY, INVALID_KEY, VALID_KEY

    return {"REGISTRY_BUCKET": BUCKET, "REGISTRY_BUCKET_REGION": "us-east-1", "SEGMENT_API_HOST": segment_url,
            "VALID_SEGMENT_WRITE_KEY": VALID_KEY, "INVALID_SEGMENT_WRITE_KEY": INVALID_KEY,
            "REGISTRY_WRITE_KEYS": f"{CLIENT_KEY},second-key", **extra}


class CountingPool(urllib3.PoolManager):
    """A connection pool for the registry's S3Client that records each request it makes: "GET", "LIST", "PUT"...
    with the status S3 answered."""

    def __init__(self) -> None:
        super().__init__(num_pools=POOL_HOSTS, maxsize=POOL_CONNECTIONS_PER_HOST, retries=False)
        self.requests: list[tuple[str, int]] = []

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        response = super().urlopen(method, url, redirect=redirect, **kw)
        kind = "LIST" if "list-type=" in url else method  # a LIST is a GET on the bucket, priced higher
        self.requests.append((kind, response.status))
        return response
