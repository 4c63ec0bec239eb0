"""Publishing the example Reflekt project into a (moto) bucket, as `publish` does for users."""

from __future__ import annotations

from typing import Any

from helpers import EXAMPLE_SCHEMAS
from reflekt_registry.tools.publish import check_file, find_schemas, upload

BUCKET = "reflekt-registry-test"
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
