"""Settings.from_env: what Lambda requires, what the local server defaults to, and bad values refused at start-up
with an error naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import EXAMPLE_SCHEMAS
from reflekt_registry.config import Credentials, S3Endpoint, S3Location, S3Object, Settings
from reflekt_registry.errors import ConfigError
from s3_support import RUNTIME_ENV

LAMBDA_ENV = {
    "REGISTRY_BUCKET": "reflekt-schemas",
    "VALID_SEGMENT_WRITE_KEY": "valid-wk",
    "INVALID_SEGMENT_WRITE_KEY": "invalid-wk",
    "REGISTRY_WRITE_KEYS": "client-key",
    **RUNTIME_ENV,
}


def lambda_env(**changes: str | None) -> dict[str, str]:
    """LAMBDA_ENV with some variables changed; None removes one."""
    env = {**LAMBDA_ENV, **changes}
    return {name: value for name, value in env.items() if value is not None}


def config_error(environ: dict[str, str], *, local: bool = False) -> str:
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(environ, local=local)
    return str(excinfo.value)


def test_complete_lambda_environment():
    """A Lambda environment with a bucket, both Segment keys and an allowlist yields S3 schemas and Segment output."""
    assert Settings.from_env(LAMBDA_ENV) == Settings(
        schemas=S3Location("reflekt-schemas", None, "schemas/"),
        valid_write_key="valid-wk",
        invalid_write_key="invalid-wk",
        segment_api_host="https://api.segment.io",
        allowed_write_keys=("client-key",),
        schema_cache_ttl=60.0,
        events_dir=Path(".registry"),
        spool=S3Location("reflekt-schemas", None, "spool/"),
        spool_drain_interval=10.0,
        debug=False,
        s3=S3Endpoint("eu-west-1", None, "auto"),
        aws_credentials=Credentials("ASIAEXAMPLE", "secret", "token"),
    )


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"REGISTRY_BUCKET": None}, "REGISTRY_BUCKET is required in Lambda"),
        ({"REGISTRY_BUCKET": "  "}, "REGISTRY_BUCKET is required in Lambda"),
        ({"VALID_SEGMENT_WRITE_KEY": None, "INVALID_SEGMENT_WRITE_KEY": None},
         "VALID_SEGMENT_WRITE_KEY and INVALID_SEGMENT_WRITE_KEY are required in Lambda"),
        ({"REGISTRY_WRITE_KEYS": None}, "REGISTRY_WRITE_KEYS is empty"),
        ({"REGISTRY_WRITE_KEYS": " , ,"}, "REGISTRY_WRITE_KEYS is empty"),
        ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"),
        ({"AWS_SECRET_ACCESS_KEY": None}, "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither"),
        ({"AWS_REGION": None}, "AWS_REGION is not set"),
    ],
    ids=["no-bucket", "blank-bucket", "no-segment-keys", "no-allowlist", "allowlist-of-blanks", "no-credentials",
         "half-credentials", "no-region"],
)
def test_lambda_refuses_a_missing_requirement_naming_it(changes, message):
    """Lambda mode refuses to start without a bucket, both Segment keys or a non-empty allowlist, naming what is missing."""
    assert config_error(lambda_env(**changes)).startswith(message)


def test_local_defaults_to_the_example_schemas_and_jsonl_output():
    """With nothing set, the local server validates against the example project and writes JSONL under .registry."""
    settings = Settings.from_env({}, local=True)
    assert settings.schemas == EXAMPLE_SCHEMAS.resolve()
    assert (settings.forwards_to_segment, settings.valid_write_key, settings.invalid_write_key) == (False, None, None)
    assert (settings.events_dir, settings.allowed_write_keys) == (Path(".registry"), ())


@pytest.mark.parametrize("name,function_name", [("registry-prod", "registry-prod"), (None, "reflekt-registry")])
def test_metrics_are_reported_under_the_function_name_the_runtime_sets(name, function_name):
    """AWS_LAMBDA_FUNCTION_NAME becomes the FunctionName dimension; without it, Terraform's default name."""
    assert Settings.from_env(lambda_env(AWS_LAMBDA_FUNCTION_NAME=name)).function_name == function_name


def test_the_lambda_spools_under_its_own_prefix_of_the_registry_bucket():
    """SPOOL_PREFIX moves the spool within the bucket (and its region); it must end in '/' and stay apart from the schemas."""
    settings = Settings.from_env(lambda_env(REGISTRY_BUCKET_REGION="eu-west-1", SPOOL_PREFIX="registry/spool/"))
    assert settings.spool == S3Location("reflekt-schemas", "eu-west-1", "registry/spool/")


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"SPOOL_PREFIX": "spool"}, "SPOOL_PREFIX='spool' must end with '/'"),
        ({"SPOOL_PREFIX": "schemas/spool/"}, "SPOOL_PREFIX='schemas/spool/' overlaps SCHEMA_PREFIX='schemas/'"),
        ({"SCHEMA_PREFIX": "spool/schemas/"}, "SPOOL_PREFIX='spool/' overlaps SCHEMA_PREFIX='spool/schemas/'"),
    ],
    ids=["no-slash", "inside-schemas", "around-schemas"],
)
def test_a_bad_spool_prefix_is_refused_naming_it(changes, message):
    assert config_error(lambda_env(**changes)).startswith(message)


def test_locally_the_spool_is_a_folder_only_when_forwarding_to_segment(tmp_path):
    """JSONL output never refuses events, so it has no spool; forwarding does, under EVENTS_DIR unless SPOOL_DIR says."""
    keys = {"VALID_SEGMENT_WRITE_KEY": "v", "INVALID_SEGMENT_WRITE_KEY": "i"}
    assert Settings.from_env({}, local=True).spool is None
    assert Settings.from_env({**keys, "EVENTS_DIR": str(tmp_path)}, local=True).spool == tmp_path / "spool"
    settings = Settings.from_env({**keys, "SPOOL_DIR": str(tmp_path / "elsewhere"), "SPOOL_DRAIN_INTERVAL_SECONDS": "2"}, local=True)
    assert (settings.spool, settings.spool_drain_interval) == (tmp_path / "elsewhere", 2.0)
    assert "SPOOL_DRAIN_INTERVAL_SECONDS='soon'" in config_error({**keys, "SPOOL_DRAIN_INTERVAL_SECONDS": "soon"}, local=True)


@pytest.mark.parametrize(
    "keys",
    [{"VALID_SEGMENT_WRITE_KEY": "valid-wk"}, {"INVALID_SEGMENT_WRITE_KEY": "invalid-wk"},
     {"VALID_SEGMENT_WRITE_KEY": "valid-wk", "INVALID_SEGMENT_WRITE_KEY": "   "}],
    ids=["valid-only", "invalid-only", "invalid-blank"],
)
@pytest.mark.parametrize("local", [True, False], ids=["local", "lambda"])
def test_one_segment_key_without_the_other_is_refused(keys, local):
    """Setting only one of the two Segment keys (a blank one counts as unset) is refused in either mode."""
    env = {**lambda_env(VALID_SEGMENT_WRITE_KEY=None, INVALID_SEGMENT_WRITE_KEY=None), **keys}
    assert config_error(env, local=local) == "set both VALID_SEGMENT_WRITE_KEY and INVALID_SEGMENT_WRITE_KEY, or neither"


@pytest.mark.parametrize("local", [True, False], ids=["local", "lambda"])
def test_bucket_and_schema_dir_together_are_refused(local):
    """REGISTRY_BUCKET and SCHEMA_DIR name two schema sources; setting both is refused."""
    env = lambda_env(SCHEMA_DIR=str(EXAMPLE_SCHEMAS))
    assert config_error(env, local=local) == "set REGISTRY_BUCKET or SCHEMA_DIR, not both"


def test_schema_dir_that_is_not_a_directory_is_refused(tmp_path):
    """A SCHEMA_DIR that does not exist is refused, naming the variable and the path."""
    missing = tmp_path / "nope"
    assert config_error({"SCHEMA_DIR": str(missing)}, local=True).startswith(f"SCHEMA_DIR={str(missing)!r} is not a directory")


@pytest.mark.parametrize(
    "changes,location",
    [
        ({}, S3Location("reflekt-schemas", None, "schemas/")),
        ({"SCHEMA_PREFIX": "team/reflekt/", "REGISTRY_BUCKET_REGION": "eu-west-1"},
         S3Location("reflekt-schemas", "eu-west-1", "team/reflekt/")),
        ({"SCHEMA_PREFIX": "registry/schemas/"}, S3Location("reflekt-schemas", None, "registry/schemas/")),
    ],
    ids=["default-prefix", "prefix-and-region", "beside-the-index"],
)
def test_s3_location_takes_prefix_and_region(changes, location):
    """The bucket's prefix defaults to schemas/, and the region is optional."""
    assert Settings.from_env(lambda_env(**changes)).schemas == location


@pytest.mark.parametrize(
    "changes,endpoint",
    [
        ({}, S3Endpoint("eu-west-1", None, "auto")),
        ({"REGISTRY_BUCKET_REGION": "us-west-2"}, S3Endpoint("us-west-2", None, "auto")),
        ({"AWS_REGION": None, "AWS_DEFAULT_REGION": "ap-south-1"}, S3Endpoint("ap-south-1", None, "auto")),
        ({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/", "AWS_ENDPOINT_URL": "http://other:1"},
         S3Endpoint("eu-west-1", "http://127.0.0.1:9000", "auto")),
        ({"AWS_ENDPOINT_URL": "https://s3.example.com"}, S3Endpoint("eu-west-1", "https://s3.example.com", "auto")),
        ({"S3_ADDRESSING_STYLE": "Path"}, S3Endpoint("eu-west-1", None, "path")),
    ],
    ids=["runtime-region", "bucket-region-first", "default-region", "s3-endpoint-first", "global-endpoint", "style"],
)
def test_s3_endpoint_region_url_and_addressing(changes, endpoint):
    """Region and endpoint are read in boto3's order; the addressing style defaults to auto."""
    assert Settings.from_env(lambda_env(**changes)).s3 == endpoint


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"AWS_ENDPOINT_URL_S3": "minio:9000"}, "AWS_ENDPOINT_URL_S3='minio:9000' is not an http(s) URL such as http://127.0.0.1:9000"),
        ({"AWS_ENDPOINT_URL_S3": "http://minio:9000/s3"}, "AWS_ENDPOINT_URL_S3='http://minio:9000/s3' must name a host and port only"),
        ({"S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE='dns' is not one of auto, path, virtual"),
    ],
    ids=["endpoint-without-scheme", "endpoint-with-path", "unknown-style"],
)
def test_bad_s3_settings_are_refused_naming_the_variable(changes, message):
    assert config_error(lambda_env(**changes)).startswith(message)


def test_local_runs_may_leave_credentials_and_region_to_boto3():
    """Locally, profiles and SSO (read by boto3 in the local server) may supply what the environment does not."""
    settings = Settings.from_env(lambda_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_REGION=None), local=True)
    assert (settings.aws_credentials, settings.s3.region) == (None, None)


@pytest.mark.parametrize("prefix", ["schemas", "team/reflekt"])
def test_schema_prefix_without_trailing_slash_is_refused(prefix):
    """A non-empty SCHEMA_PREFIX must end with '/', or keys would be joined onto a partial name."""
    assert config_error(lambda_env(SCHEMA_PREFIX=prefix)) == f"SCHEMA_PREFIX={prefix!r} must end with '/'"


@pytest.mark.parametrize("prefix", ["registry/", "", "registry/registry/"])
def test_a_schema_prefix_holding_the_index_is_refused(prefix):
    """publish writes the index of schema names at registry/<prefix>index.json, beside the schemas: never among them."""
    assert config_error(lambda_env(SCHEMA_PREFIX=prefix)).startswith(
        f"SCHEMA_PREFIX={prefix!r} holds the schema index registry/{prefix}index.json")


@pytest.mark.parametrize("value", ["api.segment.io", "ftp://x", "localhost:8080", "https://", "http:///v1/"])
def test_segment_api_host_must_be_an_http_url(value):
    """SEGMENT_API_HOST without an http(s) scheme and a host is refused, naming the variable and the value."""
    message = config_error(lambda_env(SEGMENT_API_HOST=value))
    assert message == f"SEGMENT_API_HOST={value.rstrip('/')!r} is not an http(s) URL such as https://api.segment.io"


@pytest.mark.parametrize(
    "value,host",
    [
        ("", "https://api.segment.io"),
        ("https://events.eu1.segmentapis.com/", "https://events.eu1.segmentapis.com"),
        ("http://127.0.0.1:8080//", "http://127.0.0.1:8080"),
    ],
    ids=["unset-default", "trailing-slash", "trailing-slashes"],
)
def test_segment_api_host_loses_trailing_slashes(value, host):
    """SEGMENT_API_HOST keeps no trailing slash, so '/v1/batch' appends cleanly; empty means Segment's US host."""
    assert Settings.from_env(lambda_env(SEGMENT_API_HOST=value)).segment_api_host == host


@pytest.mark.parametrize("value", [" https://api.segment.io", "https://api.segment.io/ ", "https://api.segment.io\n"],
                         ids=["leading-space", "trailing-space", "trailing-newline"])
def test_segment_api_host_surrounding_whitespace_is_stripped(value):
    """Whitespace around SEGMENT_API_HOST is stripped like every other variable's, not kept into every request URL."""
    assert Settings.from_env(lambda_env(SEGMENT_API_HOST=value)).segment_api_host == "https://api.segment.io"


@pytest.mark.parametrize("value", ["soon", "10s", "-1", "-0.5", "inf", "-inf", "nan", "1e400"])
def test_schema_cache_ttl_must_be_a_finite_non_negative_number(value):
    """SCHEMA_CACHE_TTL_SECONDS that is not a finite number of seconds >= 0 is refused, naming the variable and value."""
    assert config_error(lambda_env(SCHEMA_CACHE_TTL_SECONDS=value)).startswith(f"SCHEMA_CACHE_TTL_SECONDS={value!r} ")


@pytest.mark.parametrize("value,seconds", [("", 60.0), ("0", 0.0), (" 2.5 ", 2.5), ("300", 300.0)])
def test_schema_cache_ttl_reads_seconds(value, seconds):
    """SCHEMA_CACHE_TTL_SECONDS reads as float seconds, 0 allowed, unset meaning 60."""
    assert Settings.from_env(lambda_env(SCHEMA_CACHE_TTL_SECONDS=value)).schema_cache_ttl == seconds


@pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
def test_debug_must_be_a_boolean(value):
    """DEBUG that is not a recognised boolean is refused, naming the variable and value."""
    assert config_error(lambda_env(DEBUG=value)) == f"DEBUG={value!r} is not a boolean (use true or false)"


@pytest.mark.parametrize(
    "value,debug",
    [("", False), ("0", False), ("off", False), ("No", False), ("1", True), ("TRUE", True), (" yes ", True), ("on", True)],
)
def test_debug_reads_common_boolean_spellings(value, debug):
    """DEBUG accepts 1/true/yes/on and 0/false/no/off in any case, unset meaning off."""
    assert Settings.from_env(lambda_env(DEBUG=value)).debug is debug


@pytest.mark.parametrize(
    "value,keys",
    [("client-key", ("client-key",)), (" a , ,b,, ", ("a", "b")), ("k1,k2,k1", ("k1", "k2", "k1"))],
    ids=["one", "spaces-and-empty-items", "repeats-kept"],
)
def test_registry_write_keys_are_split_and_stripped(value, keys):
    """REGISTRY_WRITE_KEYS is comma-separated; items are stripped and empty ones dropped."""
    assert Settings.from_env(lambda_env(REGISTRY_WRITE_KEYS=value)).allowed_write_keys == keys


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch):
    """Without an explicit mapping, from_env reads os.environ."""
    for name, value in lambda_env(REGISTRY_WRITE_KEYS="from-os-environ").items():
        monkeypatch.setenv(name, value)
    for name in ("SCHEMA_DIR", "SCHEMA_PREFIX", "SEGMENT_API_HOST", "SCHEMA_CACHE_TTL_SECONDS", "DEBUG", "EVENTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().allowed_write_keys == ("from-os-environ",)


def test_the_document_in_lambda_is_an_object_in_the_bucket():
    """REGISTRY_CONFIG_KEY names the document in REGISTRY_BUCKET; with it the environment's keys may be left unset."""
    env = {"REGISTRY_BUCKET": "reflekt-schemas", "REGISTRY_BUCKET_REGION": "eu-west-1",
           "REGISTRY_CONFIG_KEY": "registry/config.json", **RUNTIME_ENV}
    assert Settings.from_env(env).config == S3Object("reflekt-schemas", "eu-west-1", "registry/config.json")


def test_locally_the_document_is_a_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    assert Settings.from_env({"REGISTRY_CONFIG": str(path)}, local=True).config == path
    assert Settings.from_env({}, local=True, config_file=str(path)).config == path


@pytest.mark.parametrize("env,message", [
    ({"REGISTRY_CONFIG_KEY": "registry/config.json", "REGISTRY_CONFIG": "x.json"}, "set REGISTRY_CONFIG (a file) or REGISTRY_CONFIG_KEY"),
    ({"REGISTRY_CONFIG_KEY": "/registry/config.json"}, "REGISTRY_CONFIG_KEY='/registry/config.json' must be an object key"),
    ({"REGISTRY_CONFIG_KEY": "registry/"}, "REGISTRY_CONFIG_KEY='registry/' must be an object key"),
    ({"REGISTRY_CONFIG_KEY": "schemas/config.json"}, "REGISTRY_CONFIG_KEY='schemas/config.json' lies under SCHEMA_PREFIX='schemas/'"),
], ids=["both", "leading-slash", "a-prefix", "among-the-schemas"])
def test_a_bad_document_location_is_refused_naming_the_variable(env, message):
    assert config_error({"REGISTRY_BUCKET": "reflekt-schemas", **env}).startswith(message)


def test_a_document_key_needs_the_bucket():
    message = config_error({"REGISTRY_CONFIG_KEY": "registry/config.json"}, local=True)
    assert message == "REGISTRY_CONFIG_KEY='registry/config.json' names an object in REGISTRY_BUCKET, which is not set"


@pytest.mark.parametrize("env,forwards", [
    ({}, False), ({"SEGMENT_API_HOST": "http://127.0.0.1:9"}, True),
    ({"VALID_SEGMENT_WRITE_KEY": "v", "INVALID_SEGMENT_WRITE_KEY": "i"}, True),
], ids=["nothing", "host", "key-pair"])
def test_locally_events_go_to_segment_once_it_is_named(env, forwards):
    """By its host (a document's sources carry the keys) or by the pair of keys (Segment's own host)."""
    assert Settings.from_env(env, local=True).forwards_to_segment is forwards
