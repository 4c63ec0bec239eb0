"""local/aws.py: a local run's S3 client takes credentials and region from the environment, else from boto3's chain."""

from __future__ import annotations

import pytest

from reflekt_registry.config import Credentials, S3Endpoint
from reflekt_registry.errors import ConfigError
from reflekt_registry.local.aws import local_s3_client


@pytest.fixture
def no_env_credentials(monkeypatch, tmp_path):
    """Nothing in the environment, and shared files that hold what a test writes into them."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never wait for an instance role
    return tmp_path


def test_the_environment_is_used_as_is():
    client = local_s3_client(S3Endpoint("eu-west-1"), Credentials("AKID", "secret"))
    assert (client.endpoint.region, client.credentials.current()) == ("eu-west-1", Credentials("AKID", "secret"))


def test_a_profile_supplies_credentials_and_region(no_env_credentials, monkeypatch):
    (no_env_credentials / "credentials").write_text("[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n")
    (no_env_credentials / "config").write_text("[profile dev]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    client = local_s3_client(S3Endpoint(None), None)
    assert client.endpoint.region == "eu-central-1"
    assert client.credentials.current() == Credentials("AKIDPROFILE", "s", None)


def test_no_credentials_anywhere_is_a_config_error(no_env_credentials):
    with pytest.raises(ConfigError, match="no AWS credentials"):
        local_s3_client(S3Endpoint("us-east-1"), None)


def test_no_region_anywhere_is_a_config_error(no_env_credentials):
    with pytest.raises(ConfigError, match="no AWS region"):
        local_s3_client(S3Endpoint(None), Credentials("AKID", "secret"))
