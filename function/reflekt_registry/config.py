"""Reads the registry's settings from environment variables and rejects bad values at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigError
from .plans import index_key

DEFAULT_SCHEMA_PREFIX = "schemas/"
DEFAULT_SEGMENT_API_HOST = "https://api.segment.io"
# Long enough that a warm Lambda rarely goes back to S3, short enough that a schema push lands within a minute.
DEFAULT_SCHEMA_CACHE_TTL_SECONDS = 60.0
# The example Reflekt project the local server validates against when nothing else is configured.
EXAMPLE_SCHEMA_DIR = Path(__file__).parents[2] / "examples" / "reflekt-project" / "schemas"
DEFAULT_EVENTS_DIR = ".registry"
# The spool shares the registry bucket under its own prefix, so IAM and lifecycle rules can single it out.
DEFAULT_SPOOL_PREFIX = "spool/"
# Locally the spool is this folder under EVENTS_DIR, unless SPOOL_DIR names another.
DEFAULT_SPOOL_FOLDER = "spool"
# How often the local server drains its spool folder: the Lambda's schedule runs every 60 s; locally a shorter
# wait shows a recovered Segment the spooled events sooner.
DEFAULT_SPOOL_DRAIN_INTERVAL_SECONDS = 10.0
# The name the registry's metrics are reported under (CloudWatch's FunctionName dimension) when the Lambda runtime
# does not set AWS_LAMBDA_FUNCTION_NAME: Terraform's default function name.
DEFAULT_FUNCTION_NAME = "reflekt-registry"
# How S3 URLs name the bucket: in the host (virtual-hosted, AWS's default) or in the path (what most S3-compatible
# stand-ins such as moto or MinIO need). "auto" picks virtual-hosted for AWS and path-style for a custom endpoint.
S3_ADDRESSING_STYLES = ("auto", "path", "virtual")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class S3Location(NamedTuple):
    bucket: str
    region: str | None
    prefix: str


class Credentials(NamedTuple):
    """AWS credentials. Static ones, such as the Lambda's (its runtime sets them in the environment from the
    function's role, valid for the life of the execution environment), are their own source."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def current(self) -> Credentials:
        return self

    def __repr__(self) -> str:  # Settings may end up in a log line or a traceback: never the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***', session_token={'***' if self.session_token else None})"


class S3Endpoint(NamedTuple):
    """Where and how S3 requests go; one client per endpoint."""

    region: str | None  # the bucket's region, which requests are signed for; None only locally, until resolved
    url: str | None = None  # an S3-compatible service instead of AWS's regional endpoint
    addressing_style: str = "auto"  # one of S3_ADDRESSING_STYLES


class S3Object(NamedTuple):
    bucket: str
    region: str | None
    key: str


class Settings(NamedTuple):
    """Everything the registry needs to run; built once per process by `from_env`."""

    schemas: S3Location | Path
    valid_write_key: str | None
    invalid_write_key: str | None
    # None means "write events to local files" (only allowed for the local server).
    segment_api_host: str | None
    # Empty means "accept any key" (only allowed for the local server).
    allowed_write_keys: tuple[str, ...]
    schema_cache_ttl: float
    events_dir: Path
    # Where events Segment did not take wait for the replay: S3 in Lambda, a folder locally; None when events go
    # to local files, which never refuse them.
    spool: S3Location | Path | None
    spool_drain_interval: float  # local only: the Lambda is drained by its EventBridge schedule
    debug: bool
    # The configuration document (plans, controls, sources); None: the variables above are the whole configuration.
    config: S3Object | Path | None = None
    # The local server: an empty allowlist accepts any key, and without Segment keys events go to files.
    local: bool = False
    s3: S3Endpoint = S3Endpoint(None)
    # None when the environment holds none: allowed only locally, where boto3's chain (profiles, SSO) finds them.
    aws_credentials: Credentials | None = None
    # The Lambda function's name (AWS_LAMBDA_FUNCTION_NAME, set by the runtime), which its metrics are reported under.
    function_name: str = DEFAULT_FUNCTION_NAME

    @property
    def forwards_to_segment(self) -> bool:
        return self.segment_api_host is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, local: bool = False,
                 config_file: str | None = None) -> Settings:
        """`config_file` (the local server's --config) overrides REGISTRY_CONFIG."""
        env = os.environ if environ is None else environ
        if config_file is not None:
            env = {**env, "REGISTRY_CONFIG": config_file}
        valid_key = _optional(env, "VALID_SEGMENT_WRITE_KEY")
        invalid_key = _optional(env, "INVALID_SEGMENT_WRITE_KEY")
        if (valid_key is None) != (invalid_key is None):
            raise ConfigError("set both VALID_SEGMENT_WRITE_KEY and INVALID_SEGMENT_WRITE_KEY, or neither")
        allowed = tuple(key.strip() for key in env.get("REGISTRY_WRITE_KEYS", "").split(",") if key.strip())
        schemas = _schema_location(env, local)
        events_dir = Path(env.get("EVENTS_DIR") or DEFAULT_EVENTS_DIR)
        config = _config_location(env, schemas)
        # Locally, events go to files unless Segment is named: by its host, or by the pair of keys.
        forwards = not local or valid_key is not None or _optional(env, "SEGMENT_API_HOST") is not None
        settings = cls(
            schemas=schemas,
            valid_write_key=valid_key,
            invalid_write_key=invalid_key,
            segment_api_host=_url(env, "SEGMENT_API_HOST", DEFAULT_SEGMENT_API_HOST) if forwards else None,
            allowed_write_keys=allowed,
            schema_cache_ttl=_seconds(env, "SCHEMA_CACHE_TTL_SECONDS", DEFAULT_SCHEMA_CACHE_TTL_SECONDS),
            events_dir=events_dir,
            spool=_spool_location(env, local, forwards, schemas, events_dir),
            spool_drain_interval=_seconds(env, "SPOOL_DRAIN_INTERVAL_SECONDS", DEFAULT_SPOOL_DRAIN_INTERVAL_SECONDS),
            debug=_flag(env, "DEBUG"),
            config=config,
            local=local,
            s3=_s3_endpoint(env),
            aws_credentials=_credentials(env),
            function_name=_optional(env, "AWS_LAMBDA_FUNCTION_NAME") or DEFAULT_FUNCTION_NAME,
        )
        if not local and isinstance(schemas, S3Location):
            if settings.aws_credentials is None:
                raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set; the Lambda runtime sets "
                                  "them from the function's role")
            if settings.s3.region is None:
                raise ConfigError("AWS_REGION is not set (the Lambda runtime sets it); or set REGISTRY_BUCKET_REGION")
        # With a document, its sources may stand in for these variables; the document is checked when read.
        if not local and config is None:
            if valid_key is None:
                raise ConfigError("VALID_SEGMENT_WRITE_KEY and INVALID_SEGMENT_WRITE_KEY are required in Lambda "
                                  "(or sources in a configuration document, REGISTRY_CONFIG_KEY)")
            if not allowed:
                raise ConfigError("REGISTRY_WRITE_KEYS is empty: list the write keys your SDKs send, comma-separated "
                                  "(or declare sources in a configuration document, REGISTRY_CONFIG_KEY)")
        return settings


def s3_from_env(environ: Mapping[str, str] | None = None) -> tuple[S3Endpoint, Credentials | None]:
    """The S3 endpoint and credentials alone, for commands that read a bucket without running the registry."""
    env = os.environ if environ is None else environ
    return _s3_endpoint(env), _credentials(env)


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _schema_location(env: Mapping[str, str], local: bool) -> S3Location | Path:
    bucket = _optional(env, "REGISTRY_BUCKET")
    schema_dir = _optional(env, "SCHEMA_DIR")
    if bucket and schema_dir:
        raise ConfigError("set REGISTRY_BUCKET or SCHEMA_DIR, not both")
    if bucket:
        prefix = env.get("SCHEMA_PREFIX", DEFAULT_SCHEMA_PREFIX)
        if prefix and not prefix.endswith("/"):
            raise ConfigError(f"SCHEMA_PREFIX={prefix!r} must end with '/'")
        # publish writes the index of schema names beside the schemas: among them it would be read as one.
        if index_key(prefix).startswith(prefix):
            raise ConfigError(f"SCHEMA_PREFIX={prefix!r} holds the schema index {index_key(prefix)}: use a folder of its own, "
                              f"such as {DEFAULT_SCHEMA_PREFIX!r}")
        return S3Location(bucket, _optional(env, "REGISTRY_BUCKET_REGION"), prefix)
    if not local:
        raise ConfigError("REGISTRY_BUCKET is required in Lambda")
    path = Path(schema_dir) if schema_dir else EXAMPLE_SCHEMA_DIR
    if not path.is_dir():
        raise ConfigError(f"SCHEMA_DIR={str(path)!r} is not a directory (point it at a Reflekt project's schemas/)")
    return path


def _spool_location(env: Mapping[str, str], local: bool, forwards: bool, schemas: S3Location | Path,
                    events_dir: Path) -> S3Location | Path | None:
    if local:
        if not forwards:
            return None
        return Path(_optional(env, "SPOOL_DIR") or events_dir / DEFAULT_SPOOL_FOLDER)
    assert isinstance(schemas, S3Location)  # REGISTRY_BUCKET is required in Lambda
    prefix = env.get("SPOOL_PREFIX", "").strip() or DEFAULT_SPOOL_PREFIX
    if not prefix.endswith("/"):
        raise ConfigError(f"SPOOL_PREFIX={prefix!r} must end with '/'")
    if prefix.startswith(schemas.prefix) or schemas.prefix.startswith(prefix):
        raise ConfigError(f"SPOOL_PREFIX={prefix!r} overlaps SCHEMA_PREFIX={schemas.prefix!r}: spooled events would mix with schemas")
    return schemas._replace(prefix=prefix)


def _config_location(env: Mapping[str, str], schemas: S3Location | Path) -> S3Object | Path | None:
    key = _optional(env, "REGISTRY_CONFIG_KEY")
    path = _optional(env, "REGISTRY_CONFIG")
    if key and path:
        raise ConfigError("set REGISTRY_CONFIG (a file) or REGISTRY_CONFIG_KEY (an object in REGISTRY_BUCKET), not both")
    if key:
        if not isinstance(schemas, S3Location):
            raise ConfigError(f"REGISTRY_CONFIG_KEY={key!r} names an object in REGISTRY_BUCKET, which is not set")
        if key.startswith("/") or key.endswith("/"):
            raise ConfigError(f"REGISTRY_CONFIG_KEY={key!r} must be an object key such as registry/config.json")
        if key.startswith(schemas.prefix):
            raise ConfigError(f"REGISTRY_CONFIG_KEY={key!r} lies under SCHEMA_PREFIX={schemas.prefix!r}, among the "
                              "schemas: keep it apart, such as registry/config.json")
        return S3Object(schemas.bucket, schemas.region, key)
    if path:
        if not Path(path).is_file():
            raise ConfigError(f"REGISTRY_CONFIG={path!r} is not a file (point it at the configuration document)")
        return Path(path).resolve()
    return None


def _s3_endpoint(env: Mapping[str, str]) -> S3Endpoint:
    # boto3's order: the bucket's own region, then the runtime's (AWS_REGION), then the configured default.
    region = _optional(env, "REGISTRY_BUCKET_REGION") or _optional(env, "AWS_REGION") or _optional(env, "AWS_DEFAULT_REGION")
    # boto3 honours the service-specific variable first, then the global one.
    name = "AWS_ENDPOINT_URL_S3" if _optional(env, "AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
    url = _optional(env, name) and _url(env, name, "", example="http://127.0.0.1:9000")
    if url and urlsplit(url).path:
        raise ConfigError(f"{name}={url!r} must name a host and port only, such as http://127.0.0.1:9000")
    style = (_optional(env, "S3_ADDRESSING_STYLE") or "auto").lower()
    if style not in S3_ADDRESSING_STYLES:
        raise ConfigError(f"S3_ADDRESSING_STYLE={style!r} is not one of {', '.join(S3_ADDRESSING_STYLES)}")
    return S3Endpoint(region, url or None, style)


def _credentials(env: Mapping[str, str]) -> Credentials | None:
    key_id, secret = _optional(env, "AWS_ACCESS_KEY_ID"), _optional(env, "AWS_SECRET_ACCESS_KEY")
    if (key_id is None) != (secret is None):
        raise ConfigError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
    if key_id is None or secret is None:
        return None
    return Credentials(key_id, secret, _optional(env, "AWS_SESSION_TOKEN"))


def _url(env: Mapping[str, str], name: str, default: str, example: str | None = None) -> str:
    value = (env.get(name, "").strip() or default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ConfigError(f"{name}={value!r} is not an http(s) URL such as {example or default}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{name}={raw!r} must be zero or more seconds")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")
