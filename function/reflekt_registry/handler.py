"""The Lambda entry point: decode the request, find its source by write key, validate each event under that
source's policy, forward each set to the source's destinations; or, invoked by the schedule, replay the spool."""

from __future__ import annotations

import time
from typing import Any

from . import log, payload, routes, routing
from .cdn_settings import settings_document
from .config import S3Location, Settings
from .document_store import DocumentStore, Fixed, open_configuration
from .errors import ConfigError, RegistryError
from .forwarder import Forwarder, SegmentClient
from .metrics import NO_METRICS, EmfMetrics, Metrics
from .request import ApiGatewayEvent
from .responses import ACCEPTED, PREFLIGHT, Response, error_response
from .routes import Action
from .routing import Outlets, open_outlets
from .s3 import S3Client
from .schemas import open_store
from .spool import Spool, drain_client, is_schedule, open_spool
from .validator import Validator

logger = log.get_logger()

# Of the time the Lambda has left when the schedule invokes it, what the drain leaves unused: enough to release
# the drain lock and print its metrics after the last send.
DRAIN_MARGIN_SECONDS = 1.0


class Registry:
    def __init__(self, configuration: Fixed | DocumentStore, validator: Validator, forwarder: Forwarder,
                 outlets: Outlets, metrics: Metrics = NO_METRICS, replay: SegmentClient | None = None):
        self.configuration = configuration
        self.validator = validator
        self.forwarder = forwarder
        self.outlets = outlets
        self.metrics = metrics
        self.replay = replay  # the drain's Segment client, when there is a spool to drain

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics = NO_METRICS, s3: S3Client | None = None) -> Registry:
        """`s3` is the one S3 client every user of the bucket shares (schemas, their index, the configuration
        document, the spool); by default it signs with the credentials in the settings (the Lambda's)."""
        if s3 is None and isinstance(settings.schemas, S3Location):
            if settings.aws_credentials is None:
                raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and schemas are in S3")
            s3 = S3Client(settings.s3, settings.aws_credentials)
        configuration = open_configuration(settings, s3)
        store = open_store(settings.schemas, settings.schema_cache_ttl, s3)
        spool = open_spool(settings.spool, metrics, s3)
        replay = drain_client(settings.segment_api_host) if spool and settings.segment_api_host else None
        return cls(configuration, Validator(store), Forwarder(spool), open_outlets(settings), metrics, replay)

    @property
    def spool(self) -> Spool | None:
        return self.forwarder.spool

    def drain(self, seconds: float) -> dict[str, Any]:
        """Replays the spool for at most `seconds`; what it did, as the scheduled invocation's result."""
        if self.spool is None or self.replay is None:
            return {}
        try:
            return self.spool.drain(self.replay, seconds)._asdict()
        except RegistryError as e:  # the spool is unreadable: the invocation fails, and the age alarm sees no data
            logger.error("cannot drain the spool", extra={"fields": {"error": f"{type(e).__name__}: {e}"}})
            raise

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
            self.configuration.current().router.source_for([route.write_key])
            return Response(200, settings_document(event, route))
        if route.action is Action.METRICS:
            return ACCEPTED
        envelope = payload.decode(event, route)
        source = self.configuration.current().router.source_for(envelope.write_keys)
        verdicts = self.validator.check_all(envelope.events, source.policy)
        consignments = routing.consign(self.outlets, source, envelope.events, envelope.sent_with, verdicts)
        with self.metrics.forwarding(verdicts):
            self.forwarder.deliver(consignments, envelope.sent_at)
        logger.info("forwarded", extra={"fields": {
            "path": event.path, "source": source.name, "valid": sum(len(c.valid_events) for c in consignments),
            "invalid": sum(len(c.invalid_events) for c in consignments)}})
        return ACCEPTED


def _request_fields(event: ApiGatewayEvent, error: Exception) -> dict[str, Any]:
    return {"method": event.method, "path": event.path, "error": f"{type(error).__name__}: {error}"}


_registry: Registry | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _registry
    if _registry is None:  # built on the first invocation and kept for every warm one
        settings = Settings.from_env()
        log.configure(settings.debug)
        _registry = Registry.from_settings(settings, EmfMetrics(settings.function_name))  # only the Lambda reports to CloudWatch
    if is_schedule(event):
        return _registry.drain(context.get_remaining_time_in_millis() / 1e3 - DRAIN_MARGIN_SECONDS)
    return _registry.handle(event)
