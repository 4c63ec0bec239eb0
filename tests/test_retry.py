"""retry.py: which statuses are retried, how long between attempts, and Retry-After."""

from __future__ import annotations

import email.utils
import time

import pytest

from reflekt_registry.retry import RetryPolicy


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    """Throttling, timeouts and server errors that may clear up on their own are retried."""
    assert RetryPolicy().retryable(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 413, 422, 501, 505])
def test_permanent_statuses_are_not_retried(status):
    """A refusal that a retry cannot change (bad request, auth, size, not implemented) is not retried."""
    assert not RetryPolicy().retryable(status)


def expected_backoff(policy: RetryPolicy, attempt: int) -> float:
    return min(policy.backoff_max, policy.backoff_base * 2**attempt)


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_grows_with_jitter_and_is_capped(attempt):
    """Delay n is min(backoff_max, base * 2**n) plus at most `jitter` of it, and the jitter is really random."""
    policy = RetryPolicy()
    wait = expected_backoff(policy, attempt)
    samples = [policy.delay(attempt) for _ in range(200)]
    assert all(wait <= s <= wait * (1 + policy.jitter) for s in samples)
    assert len(set(samples)) > 1


def test_backoff_sequence_without_jitter():
    """Without jitter the delays are exactly 0.1, 0.2, 0.4, 0.8, then the 1 s cap."""
    policy = RetryPolicy(jitter=0)
    assert [policy.delay(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@pytest.mark.parametrize("header,seconds", [("2", 2.0), ("0", 0.0), (" 3 ", 3.0), ("30", 30.0)])
def test_retry_after_seconds_replace_the_backoff(header, seconds):
    """A Retry-After in seconds is the delay, whatever the attempt."""
    assert RetryPolicy().delay(3, header) == seconds


def test_retry_after_http_date_is_honoured():
    """A Retry-After date is turned into the seconds until then; a date in the past means now."""
    policy = RetryPolicy()
    future = email.utils.formatdate(time.time() + 100, usegmt=True)
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    # HTTP dates have one-second resolution, and a little wall time passes before the header is read.
    assert 90 <= policy.delay(0, future) <= 100
    assert policy.delay(0, past) == 0


@pytest.mark.parametrize("header", ["soon", "-5", "1.5", "", "1e3", "Thu, 99 Foo 2099"])
def test_garbage_retry_after_falls_back_to_backoff(header):
    """An unreadable Retry-After is ignored: the delay is the ordinary backoff for that attempt."""
    policy = RetryPolicy(jitter=0)
    assert policy.delay(2, header) == pytest.approx(expected_backoff(policy, 2))
