"""S3 access for what runs on a developer's machine (the local server, check-events): credentials and region are
found the way boto3 finds them (environment, shared files, profiles, SSO), so a local run needs no exported keys.
The Lambda never comes here: its runtime puts its credentials and region in the environment."""

from __future__ import annotations

from typing import Any

from ..config import Credentials, S3Endpoint
from ..errors import ConfigError
from ..s3 import S3Client


class BotocoreCredentials:
    """botocore's credentials, which refresh themselves (SSO, assumed roles), as the S3 client's credential source."""

    def __init__(self, credentials: Any):
        self._credentials = credentials

    def current(self) -> Credentials:
        frozen = self._credentials.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def local_s3_client(endpoint: S3Endpoint, credentials: Credentials | None) -> S3Client:
    """An S3 client for `endpoint`; what the environment leaves out comes from boto3's configuration chain."""
    if credentials is not None and endpoint.region is not None:
        return S3Client(endpoint, credentials)
    import botocore.session

    session = botocore.session.get_session()
    region = endpoint.region or session.get_config_variable("region")
    if not region:
        raise ConfigError("no AWS region for the bucket: set REGISTRY_BUCKET_REGION or AWS_REGION, or a region in your AWS profile")
    source: Credentials | BotocoreCredentials | None = credentials
    if source is None:
        found = session.get_credentials()
        if found is None:
            raise ConfigError("no AWS credentials: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a profile "
                              "(AWS_PROFILE) or an SSO login")
        source = BotocoreCredentials(found)
    return S3Client(endpoint._replace(region=region), source)
