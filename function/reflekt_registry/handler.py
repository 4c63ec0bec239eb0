"""The Lambda entry point: decode the request, check its write key, validate each event, forward both sets."""

from __future__ import annotations

import time
from typing import Any

from . import log, payload, routes
from .auth import WriteKeyAllowlist
from .cdn_settings import settings_document
from .config import S3Location, Settings
from .controls import DEFAULT_POLICY, Policy
from .errors import ConfigError, RegistryError
from .forwarder import Destination, Forwarder, JsonlFile, SegmentClient, SegmentSource
from .metrics import NO_METRICS, EmfMetrics, Metrics
from .request import ApiGatewayEvent
from .responses import ACCEPTED, PREFLIGHT, Response, error_response
from .routes import Action
from .s3 import S3Client
from .schemas import open_store
from .validator import Validator, partition

logger = log.get_logger()


class Registry:
    def __init__(self, allowlist: WriteKeyAllowlist, validator: Validator, forwarder: Forwarder, metrics: Metrics = NO_METRICS,
                 policy: Policy = DEFAULT_POLICY):
        self.allowlist = allowlist
        self.validator = validator
        self.forwarder = forwarder
        self.metrics = metrics
        self.policy = policy  # the tracking plans and controls events are judged under

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics = NO_METRICS, s3: S3Client | None = None) -> Registry:
        """`s3` is the one S3 client every reader of the bucket shares; by default it signs with the credentials
        in the settings (the Lambda's)."""
        valid: Destination
        invalid: Destination
        if settings.forwards_to_segment:
            # A client (and its pool) per source: each keeps its own warm connection, however the two posts of
            # the first invocation happen to overlap.
            valid = SegmentSource(SegmentClient(settings.segment_api_host), settings.valid_write_key)
            invalid = SegmentSource(SegmentClient(settings.segment_api_host), settings.invalid_write_key)
        else:
            valid = JsonlFile(settings.events_dir / "valid.jsonl")
            invalid = JsonlFile(settings.events_dir / "invalid.jsonl")
        if s3 is None and isinstance(settings.schemas, S3Location):
            if settings.aws_credentials is None:
                raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and schemas are in S3")
            s3 = S3Client(settings.s3, settings.aws_credentials)
        store = open_store(settings.schemas, settings.schema_cache_ttl, s3)
        return cls(WriteKeyAllowlist(settings.allowed_write_keys), Validator(store), Forwarder(valid, invalid), metrics)

    def handle(self, raw_event: dict[str, Any]) -> dict[str, Any]:
        event = ApiGatewayEvent(raw_event)
        started = time.perf_counter()
        try:
            response = self.dispatch(event)
        except RegistryError as e:
            logger.log(40 if e.status >= 500 else 20, "request refused", extra={"fields": _request_fields(event, e)})
            response = error_response(e)
        except Exception as e:  # a bug must still answer, and a 500 makes the SDK retry rather than drop
            logger.exception("unexpected error", extra={"fields": _request_fields(event, e)})
            response = error_response(RegistryError())
        logger.debug("request done", extra={"fields": {"status": int(response.status), "ms": round((time.perf_counter() - started) * 1e3, 2)}})
        return response.to_proxy(event)

    def dispatch(self, event: ApiGatewayEvent) -> Response:
        route = routes.match(event.method, event.path)
        if route.action is Action.PREFLIGHT:
            return PREFLIGHT
        if route.action is Action.SETTINGS:
            self.allowlist.check([route.write_key])
            return Response(200, settings_document(event, route))
        if route.action is Action.METRICS:
            return ACCEPTED
        envelope = payload.decode(event, route)
        self.allowlist.check(envelope.write_keys)
        verdicts = [self.validator.check(message, self.policy) for message in envelope.events]
        valid, invalid = partition(envelope.events, verdicts)
        with self.metrics.forwarding(verdicts):
            self.forwarder.deliver(valid, invalid, envelope.sent_at)
        logger.info("forwarded", extra={"fields": {"path": event.path, "valid": len(valid), "invalid": len(invalid)}})
        return ACCEPTED


def _request_fields(event: ApiGatewayEvent, error: Exception) -> dict[str, Any]:
    return {"method": event.method, "path": event.path, "error": f"{type(error).__name__}: {error}"}


_registry: Registry | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _registry
    if _registry is None:  # built on the first invocation and kept for every warm one
        settings = Settings.from_env()
        log.configure(settings.debug)
        _registry = Registry.from_settings(settings, EmfMetrics.for_lambda())  # only the Lambda reports to CloudWatch
    return _registry.handle(event)
