"""Connection reuse: warm invocations must post to Segment over the pooled connections the first one opened.

The timed handler benchmarks count new connections too, but over only one fresh registry per batch size. Here
many fresh registries each take a cold invocation and then warm ones, so a pool that opens a connection late
(say, the first time its two concurrent posts overlap) shows up at a rate, not by luck.
"""

from __future__ import annotations

import workload
from helpers import CLIENT_KEY, make_registry
from report import Results
from services import SegmentService

# Fresh registries, each one a new Lambda execution environment with an empty connection pool.
FRESH_REGISTRIES = 20
WARM_INVOCATIONS = 10
# Enough events for both destinations, so each invocation posts twice, concurrently.
BATCH = 20


def test_warm_invocations_open_no_connections(segment: SegmentService, results: Results, quick: bool) -> None:
    request = workload.request(BATCH)
    for _ in range(1 if quick else FRESH_REGISTRIES):
        registry = make_registry(segment.url, REGISTRY_WRITE_KEYS=CLIENT_KEY)
        before = segment.connections()
        assert registry.handle(request)["statusCode"] == 200  # cold: the pool opens its connections
        opened = segment.connections()
        for _ in range(WARM_INVOCATIONS):
            assert registry.handle(request)["statusCode"] == 200
        cold, warm = opened - before, segment.connections() - opened
        results.count_connections(cold, WARM_INVOCATIONS, warm)  # before the checks: a full run's table shows it
        assert cold > 0, "the cold invocation posted without a connection the fake Segment counted"
        assert warm == 0, f"{warm} new connections to Segment in {WARM_INVOCATIONS} warm invocations"
    segment.reset()
