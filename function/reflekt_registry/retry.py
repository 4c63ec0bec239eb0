"""How the registry's HTTP clients (Segment, S3) retry: one policy type and one loop within a time budget."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import NamedTuple

import urllib3
from urllib3.util.retry import Retry

from .log import get_logger

# A timeout is never shorter than this, even when the budget is nearly spent: below it no request can succeed.
MIN_ATTEMPT_TIMEOUT_SECONDS = 0.05

log = get_logger()


class RetryPolicy(NamedTuple):
    """When and how long to retry a request; the defaults (Segment's) fit inside the Node SDK's 10 s request timeout.

    Delays grow as backoff_base * 2**n (0.1 s, 0.2 s, 0.4 s, ...), each capped at backoff_max, with up to
    `jitter` of it added at random. A Retry-After header replaces the computed delay. No attempt starts, and
    no sleep runs, past `budget` seconds from the first attempt: the client then gets a 503 and retries itself.
    """

    attempts: int = 4
    budget: float = 6.0
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    backoff_base: float = 0.1
    backoff_max: float = 1.0
    jitter: float = 0.1
    #: Statuses the server may clear up on its own: throttling, timeouts and server errors other than 501/505.
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

    def retryable(self, status: int) -> bool:
        return status in self.retry_statuses

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        if retry_after:
            try:
                return max(0.0, Retry().parse_retry_after(retry_after))
            except urllib3.exceptions.InvalidHeader:
                pass  # an unreadable Retry-After falls back to backoff
        wait = min(self.backoff_max, self.backoff_base * 2**attempt)
        return wait + random.uniform(0, self.jitter * wait)


class Outcome(NamedTuple):
    """How a request ended: `failure` is None when `response` is a final answer (any status the policy does not
    retry); otherwise it names the last failure ("HTTP 503", "ReadTimeoutError") and `response` may be None."""

    response: urllib3.BaseHTTPResponse | None
    failure: str | None
    retry_after: str | None = None


def send(pool: urllib3.PoolManager, method: str, url: str, body: bytes | None, headers: Mapping[str, str],
         policy: RetryPolicy, clock: Callable[[], float], sleep: Callable[[float], None], service: str) -> Outcome:
    """Sends one request until it gets a final answer, the attempts run out, or the next one would pass the budget."""
    deadline = clock() + policy.budget
    outcome = Outcome(None, "no attempt")
    for attempt in range(policy.attempts):
        remaining = deadline - clock()
        timeout = urllib3.Timeout(
            connect=max(MIN_ATTEMPT_TIMEOUT_SECONDS, min(policy.connect_timeout, remaining)),
            read=max(MIN_ATTEMPT_TIMEOUT_SECONDS, min(policy.read_timeout, remaining)),
        )
        try:
            response = pool.request(method, url, body=body, headers=dict(headers), timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as e:  # refused, reset, timed out: the server may not have seen it
            outcome = Outcome(None, type(e).__name__)
        else:
            if not policy.retryable(response.status):
                return Outcome(response, None)
            outcome = Outcome(response, f"HTTP {response.status}", response.headers.get("Retry-After"))
        wait = policy.delay(attempt, outcome.retry_after)
        if attempt == policy.attempts - 1 or clock() + wait >= deadline:
            break
        log.info(f"retrying {service}", extra={"fields": {"attempt": attempt + 1, "failure": outcome.failure, "wait": round(wait, 3)}})
        sleep(wait)
    return outcome
