"""DocumentStore: the document read at start, re-read at most once per TTL, and the last good version kept when a
new one is bad, missing or unreadable."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reflekt_registry.config import Settings
from reflekt_registry.document import environment, parse
from reflekt_registry.document_store import Configuration, DocumentStore, Fixed, open_configuration
from reflekt_registry.errors import ConfigError, SchemaStoreUnavailableError
from reflekt_registry.schemas import STALE_RETRY_SECONDS, DirectorySource

TTL = 60.0


def document(*names: str) -> dict[str, Any]:
    return {"version": 1, "invalid_write_key": "invalid",
            "sources": {name: {"write_keys": [f"{name}-key"]} for name in names}}


class CountingSource(DirectorySource):
    """The folder the document is in, counting reads and failing when told to."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.reads: list[str | None] = []  # the version each read said it had
        self.down = False

    def fetch(self, name: str, known_version: str | None) -> Any:
        self.reads.append(known_version)
        if self.down:
            raise SchemaStoreUnavailableError("the store is down")
        return super().fetch(name, known_version)


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "config.json"
    write(path, document("web"))
    return path


def write(path: Path, body: Any) -> None:
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    stamp = path.stat().st_mtime_ns + 1_000_000_000  # a new version even within the file system's time resolution
    os.utime(path, ns=(stamp, stamp))


def open_store(path: Path, clock) -> tuple[DocumentStore, CountingSource]:
    """The store as open_configuration makes it for REGISTRY_CONFIG, on a counting source and a fake clock."""
    source = CountingSource(path.parent)
    env = environment(Settings.from_env({}, local=True))
    store = DocumentStore(source, path.name, f"REGISTRY_CONFIG={str(path)!r}",
                          lambda raw: Configuration.of(parse(raw, env)), TTL, clock)
    source.reads.clear()  # the read at start
    return store, source


def names(store: DocumentStore) -> list[str]:
    return [source.name for source in store.current().document.sources]


def test_the_document_is_read_once_per_ttl(config_file, clock):
    """Within the TTL no request reads it; after, one conditional read that finds it unchanged."""
    store, source = open_store(config_file, clock)
    for _ in range(5):
        assert names(store) == ["web"]
    assert source.reads == []
    clock.advance(TTL)
    for _ in range(5):
        assert names(store) == ["web"]
    assert len(source.reads) == 1 and source.reads[0] is not None  # it sent the version it has


def test_a_new_version_takes_effect_after_the_ttl(config_file, clock):
    store, _ = open_store(config_file, clock)
    write(config_file, document("web", "ios"))
    assert names(store) == ["web"]
    clock.advance(TTL)
    assert names(store) == ["web", "ios"]
    assert store.current().router.source_for(["ios-key"]).name == "ios"


def test_a_bad_new_version_leaves_the_last_good_one_and_says_why(config_file, clock, registry_log):
    """A refused version is logged once, not re-parsed every TTL; a fixed one then takes effect."""
    store, source = open_store(config_file, clock)
    bad = document("web")
    bad["sources"]["web"]["controls"] = {"violatons": "allow"}
    write(config_file, bad)
    clock.advance(TTL)
    assert names(store) == ["web"]
    [refusal] = [r for r in registry_log.records if r["message"].startswith("configuration document refused")]
    assert refusal["error"].startswith("sources.web.controls.violatons: unknown key")
    assert refusal["document"] == f"REGISTRY_CONFIG={str(config_file)!r}"
    clock.advance(TTL)
    assert names(store) == ["web"]
    assert len([r for r in registry_log.records if r["message"].startswith("configuration document refused")]) == 1
    write(config_file, document("web", "server"))
    clock.advance(TTL)
    assert names(store) == ["web", "server"]


def test_a_missing_document_leaves_the_last_good_one(config_file, clock, registry_log):
    store, _ = open_store(config_file, clock)
    config_file.unlink()
    clock.advance(TTL)
    assert names(store) == ["web"]
    assert any(r["message"].startswith("configuration document missing") for r in registry_log.records)


def test_an_unreadable_store_keeps_the_last_good_one_and_retries_soon(config_file, clock, registry_log):
    store, source = open_store(config_file, clock)
    source.down = True
    clock.advance(TTL)
    assert names(store) == ["web"]
    source.down = False
    write(config_file, document("ios"))
    clock.advance(STALE_RETRY_SECONDS)
    assert names(store) == ["ios"]
    assert any(r["message"].startswith("configuration document unreadable") for r in registry_log.records)


def test_a_bad_document_at_start_is_a_configuration_error_naming_it(config_file):
    write(config_file, {"version": 1, "sources": {"web": {"write_keys": ["k"]}}})
    with pytest.raises(ConfigError) as excinfo:
        open_configuration(Settings.from_env({}, local=True, config_file=str(config_file)))
    assert str(excinfo.value) == (f"REGISTRY_CONFIG={str(config_file)!r}: sources.web.invalid_write_key: required, since "
                                  "the document has no invalid_write_key for every source")


def test_a_config_file_that_does_not_exist_is_refused(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="REGISTRY_CONFIG=.*nope.json' is not a file"):
        Settings.from_env({}, local=True, config_file=str(missing))


def test_without_a_document_the_environment_is_fixed():
    configuration = open_configuration(Settings.from_env({}, local=True))
    assert isinstance(configuration, Fixed)
    assert configuration.current().router.source_for(["any-key"]).write_keys == ()
