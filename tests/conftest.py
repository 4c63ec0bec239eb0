from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.segment import FakeSegment


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
