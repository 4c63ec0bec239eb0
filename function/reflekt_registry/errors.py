"""The registry's exception tree; each error carries the HTTP status a client receives for it."""

from __future__ import annotations

from http import HTTPStatus


class RegistryError(Exception):
    """Base of every error the registry raises on purpose."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR


class ConfigError(RegistryError):
    """The environment is not a usable configuration; raised at start-up, naming the variable."""


class BadRequestError(RegistryError):
    """The request cannot be read as a Segment call; SDKs drop a batch on 400 instead of retrying it."""

    status = HTTPStatus.BAD_REQUEST


class UnauthorizedError(RegistryError):
    """The write key is missing or not on the allowlist."""

    status = HTTPStatus.UNAUTHORIZED


class NotFoundError(RegistryError):
    """No route serves this path."""

    status = HTTPStatus.NOT_FOUND


class MethodNotAllowedError(RegistryError):
    """The path exists but not for this method."""

    status = HTTPStatus.METHOD_NOT_ALLOWED


class UnavailableError(RegistryError):
    """A dependency (S3, Segment) failed; 503 makes every SDK retry, and Segment dedupes on messageId."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class S3Error(UnavailableError):
    """S3 was unreachable within the retry budget, or answered with an error (denied, throttled, no such bucket)."""


class SchemaStoreUnavailableError(UnavailableError):
    """The schema store could not be read and the schema is not cached."""


class DeliveryError(UnavailableError):
    """Segment did not accept a batch within the retry budget."""


class BatchRefusedError(DeliveryError):
    """Segment refused a batch with a 4xx it does not clear on its own: sending the same bytes again cannot succeed."""


class SpoolUnavailableError(UnavailableError):
    """The spool could not be written or read, so undelivered events cannot be kept for a later replay."""
