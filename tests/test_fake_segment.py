"""The fake Segment behaves as the real one does where the registry's correctness depends on it."""

from __future__ import annotations

import pytest

from fakes.segment import MAX_BATCH_EVENTS
from helpers import VALID_KEY, basic
from local_support import call


def post_batch(url: str, count: int) -> tuple[int, dict]:
    events = [{"type": "track", "event": "Test Event", "userId": "u1", "messageId": f"m-{i}"} for i in range(count)]
    status, _, body = call(url + "/v1/batch", "POST", {"batch": events}, {"Authorization": basic(VALID_KEY),
                                                                           "Content-Type": "application/json"})
    return status, body


@pytest.mark.parametrize("count", [MAX_BATCH_EVENTS + 1, 2 * MAX_BATCH_EVENTS])
def test_events_past_2500_in_a_batch_are_answered_200_and_dropped(segment, count):
    """As Segment does: success for the whole batch, but only the first 2,500 events are kept."""
    assert post_batch(segment.url, count) == (200, {"success": True})
    assert segment.message_ids(VALID_KEY) == [f"m-{i}" for i in range(MAX_BATCH_EVENTS)]
    assert segment.dropped == count - MAX_BATCH_EVENTS


def test_a_batch_of_2500_events_is_kept_whole(segment):
    assert post_batch(segment.url, MAX_BATCH_EVENTS) == (200, {"success": True})
    assert len(segment.events(VALID_KEY)) == MAX_BATCH_EVENTS
    assert segment.dropped == 0
