from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

import ci_skips
from fakes.segment import FakeSegment


def pytest_configure(config: pytest.Config) -> None:
    ci_skips.install(config)


@pytest.fixture
def segment() -> Iterator[FakeSegment]:
    with FakeSegment() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach AWS: dummy credentials, a fixed region, and no endpoint inherited from the shell."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


class FakeClock:
    """A monotonic clock that moves only when a test advances it or when code sleeps on it."""

    def __init__(self, start: float = 1000.0):
        # Not zero, so code that treats a 0.0 timestamp as "unset" cannot pass by accident.
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class LogCapture:
    """The registry's log as it would reach CloudWatch: one JSON object per line, at the level given."""

    def __init__(self) -> None:
        import io

        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def records(self) -> list[dict]:
        import json

        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def registry_log() -> Iterator[LogCapture]:
    """Captures logger 'reflekt_registry' at INFO with the production JSON formatter, whatever else is attached."""
    import logging

    from reflekt_registry.log import LOGGER_NAME, JsonFormatter

    capture = LogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the Lambda's level unless DEBUG is set
    yield capture
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_url(_moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """S3 as a real HTTP server (moto) on loopback, emptied for each test, which code in other processes (a zip,
    Terraform's local-exec) reaches too; AWS_ENDPOINT_URL_S3 points boto3 and the registry at it."""
    import urllib3

    urllib3.request("POST", f"{_moto_server}/moto-api/reset")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", _moto_server)
    return _moto_server
