"""Keeps the configuration in force: the document read at start, then re-read with a conditional GET at most once
per TTL; a bad new version leaves the last good one in force and says why in the log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .auth import SourceRouter
from .config import S3Location, S3Object, Settings
from .document import Document, environment, from_environment, parse
from .errors import ConfigError, SchemaStoreUnavailableError
from .log import get_logger
from .s3 import S3Client
from .schemas import NOT_MODIFIED, STALE_RETRY_SECONDS, DirectorySource, Fetched, S3Source, SchemaSource

log = get_logger()


class Configuration(NamedTuple):
    """One version of the configuration, ready for requests: the document and its key lookup."""

    document: Document
    router: SourceRouter

    @classmethod
    def of(cls, document: Document) -> Configuration:
        return cls(document, SourceRouter(document))


class Fixed(NamedTuple):
    """The configuration when there is no document: today's environment variables, for the process's lifetime."""

    configuration: Configuration

    def current(self) -> Configuration:
        return self.configuration


class DocumentStore:
    """The document at `name` in `source`; `load` turns its bytes into a Configuration or raises ConfigError."""

    def __init__(self, source: SchemaSource, name: str, where: str, load: Callable[[bytes], Configuration],
                 ttl: float, clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.name = name
        self.where = where  # how messages name the document: the variable that points at it, and its address
        self.load = load
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._version: str | None = None  # the version last read, good or bad, so a bad one is read only once
        # At start there is no good version to fall back on: a missing or bad document stops the start.
        fetched = source.fetch(name, None)
        if not isinstance(fetched, Fetched):
            raise ConfigError(f"{where}: there is no such document")
        try:
            self._configuration = load(fetched.body)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        self._version = fetched.version
        self._expires = clock() + ttl
        self._loaded(fetched.version)

    def current(self) -> Configuration:
        if self.clock() < self._expires:
            return self._configuration
        with self._lock:
            if self.clock() >= self._expires:  # another thread may have re-read it while this one waited
                self._refresh()
            return self._configuration

    def _refresh(self) -> None:
        now = self.clock()
        try:
            fetched = self.source.fetch(self.name, self._version)
        except SchemaStoreUnavailableError as e:
            self._expires = now + min(self.ttl, STALE_RETRY_SECONDS)
            log.warning("configuration document unreadable; the last good one stays in force",
                        extra={"fields": {"document": self.where, "error": str(e)}})
            return
        self._expires = now + self.ttl
        if fetched is NOT_MODIFIED:
            return
        if not isinstance(fetched, Fetched):
            log.error("configuration document missing; the last good one stays in force",
                      extra={"fields": {"document": self.where}})
            return
        self._version = fetched.version
        try:
            self._configuration = self.load(fetched.body)
        except ConfigError as e:
            log.error("configuration document refused; the last good one stays in force",
                      extra={"fields": {"document": self.where, "version": fetched.version, "error": str(e)}})
            return
        self._loaded(fetched.version)

    def _loaded(self, version: str) -> None:
        document = self._configuration.document
        log.info("configuration document loaded", extra={"fields": {
            "document": self.where, "version": version, "sources": len(document.sources)}})


def open_configuration(settings: Settings, s3: S3Client | None = None) -> Fixed | DocumentStore:
    """The configuration the settings point at: a document kept current, or the environment's single source.
    A document in the bucket is read through `s3`, the client the schema store shares."""
    env = environment(settings)
    if settings.config is None:
        return Fixed(Configuration.of(from_environment(env)))

    def load(raw: bytes) -> Configuration:
        return Configuration.of(parse(raw, env))

    source, name, where = _document_source(settings.config, s3)
    return DocumentStore(source, name, where, load, settings.schema_cache_ttl)


def _document_source(location: S3Object | Path, s3: S3Client | None) -> tuple[SchemaSource, str, str]:
    if isinstance(location, Path):
        return DirectorySource(location.parent), location.name, f"REGISTRY_CONFIG={str(location)!r}"
    if s3 is None:
        raise ValueError(f"a configuration document in s3://{location.bucket} needs an S3 client")
    source = S3Source(S3Location(location.bucket, location.region, ""), s3)
    return source, location.key, f"REGISTRY_CONFIG_KEY={location.key!r} (s3://{location.bucket}/{location.key})"
