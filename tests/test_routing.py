"""routing: which destinations a source's events go to, grouped by the key each was sent with."""

from __future__ import annotations

from helpers import TEST_EVENT, track
from reflekt_registry.controls import Policy
from reflekt_registry.document import ENVIRONMENT_SOURCE, Source
from reflekt_registry.forwarder import SegmentClient, SegmentSource
from reflekt_registry.routing import FileOutlets, SegmentOutlets, consign
from reflekt_registry.validator import Verdict, Violation

PASS_THROUGH = Source("web", ("web-1", "web-2"), Policy(), None, "invalid")
SEPARATE = Source("ios", ("ios-1",), Policy(), "ios-valid", "ios-invalid")
VALID = Verdict(TEST_EVENT)
INVALID = Verdict(TEST_EVENT, (Violation("$.properties.test_property", "type", "must be string"),))


def test_segment_outlets_pass_the_inbound_key_through_or_use_the_sources_valid_key():
    valid, invalid = SegmentClient("https://api.segment.io"), SegmentClient("https://api.segment.io")
    outlets = SegmentOutlets(valid, invalid)
    assert outlets.for_source(PASS_THROUGH, "web-2") == (SegmentSource(valid, "web-2"), SegmentSource(invalid, "invalid"))
    assert outlets.for_source(SEPARATE, "ios-1") == (SegmentSource(valid, "ios-valid"), SegmentSource(invalid, "ios-invalid"))


def test_consign_groups_events_by_the_key_they_were_sent_with():
    """Each group is partitioned on its own: valid events under their own key, invalid ones annotated."""
    outlets = SegmentOutlets(SegmentClient("https://api.segment.io"), SegmentClient("https://api.segment.io"))
    events = [track(message_id="a"), track(message_id="b"), track(message_id="c")]
    consignments = consign(outlets, PASS_THROUGH, events, ["web-1", "web-2", "web-1"], [VALID, VALID, INVALID])
    summary = [(c.valid.write_key, [e["messageId"] for e in c.valid_events], c.invalid.write_key,
                [e["messageId"] for e in c.invalid_events]) for c in consignments]
    assert summary == [("web-1", ["a"], "invalid", ["c"]), ("web-2", ["b"], "invalid", [])]
    assert events[2]["properties"]["validation_errors"] == ["must be string"]


def test_file_outlets_keep_the_environments_files_and_give_each_declared_source_a_folder(tmp_path):
    outlets = FileOutlets(tmp_path)
    environment = Source(ENVIRONMENT_SOURCE, (), Policy(), None, None)
    assert [d.path for d in outlets.for_source(environment, "any")] == [tmp_path / "valid.jsonl", tmp_path / "invalid.jsonl"]
    assert [d.path for d in outlets.for_source(SEPARATE, "ios-1")] == [tmp_path / "ios" / "valid.jsonl", tmp_path / "ios" / "invalid.jsonl"]
    assert outlets.for_source(SEPARATE, "ios-1")[0] is outlets.for_source(SEPARATE, "ios-1")[0]  # one lock per file
