"""Tracking plans: which schema an event's name and version mean, and the index that answers it."""

from __future__ import annotations

import json
import unicodedata

import pytest

from reflekt_registry.plans import (MAX_EVENT_NAME_CHARS, NAMED_MAJOR, NO_VERSION, NOT_AN_INTEGER, UNKNOWN_MAJOR,
                                    IndexEntry, Resolution, SchemaIndex, Unresolved, entry_from_document,
                                    entry_from_path, event_version_of, index_document, name_key, read_index_document)

PLAN = [
    "shop/Order_Completed/1-0.json",
    "shop/Order_Completed/1-1.json",
    "shop/Order_Completed/2-0.json",
    "shop/Identify/1-0.json",
    "segment/demo/Identify/1-0.json",
    "shop/Page_Viewed/3-0.json",
]
INDEX = SchemaIndex(filter(None, map(entry_from_path, PLAN)))


def resolve(name, version=None, plans=("shop/",), index=INDEX):
    return index.resolve(name, version, plans)


# -- versions ------------------------------------------------------------------------------------------------------

def test_event_version_names_the_major_and_gets_its_latest_minor():
    assert resolve("Order Completed", 1) == Resolution("shop/Order_Completed/1-1.json", NAMED_MAJOR)
    assert resolve("Order Completed", 2).schema_id == "shop/Order_Completed/2-0.json"


@pytest.mark.parametrize("version,why", [
    (None, NO_VERSION),
    ("2", NOT_AN_INTEGER),
    (2.5, NOT_AN_INTEGER),
    (2.0, NOT_AN_INTEGER),
    (True, NOT_AN_INTEGER),
    ([2], NOT_AN_INTEGER),
    ({"major": 2}, NOT_AN_INTEGER),
    (-1, UNKNOWN_MAJOR),
    (0, UNKNOWN_MAJOR),
    (3, UNKNOWN_MAJOR),
    (10**30, UNKNOWN_MAJOR),
], ids=repr)
def test_a_missing_junk_or_unknown_version_means_the_oldest_major(version, why):
    """As in Protocols: anything but an integer naming an existing MAJOR gets the oldest MAJOR, and says why."""
    assert resolve("Order Completed", version) == Resolution("shop/Order_Completed/1-1.json", why)


@pytest.mark.parametrize("event,expected", [
    ({"context": {"protocols": {"event_version": 2}}}, 2),
    ({"context": {"protocols": {}}}, None),
    ({"context": {"protocols": "2"}}, None),
    ({"context": None}, None),
    ({}, None),
])
def test_event_version_is_read_from_context_protocols(event, expected):
    assert event_version_of(event) == expected


# -- names and plans ---------------------------------------------------------------------------------------------

def test_without_plans_every_schema_is_one_plan_and_a_name_in_two_plans_is_ambiguous():
    found = resolve("Identify", plans=())
    assert isinstance(found, Unresolved) and found.keyword == "ambiguous"
    assert "segment/demo/, shop/" in found.message and '"plans"' in found.message


def test_a_plan_chooses_between_them():
    assert resolve("Identify", plans=("segment/demo/",)).schema_id == "segment/demo/Identify/1-0.json"
    assert resolve("Identify", plans=("shop/",)).schema_id == "shop/Identify/1-0.json"


def test_a_name_outside_the_plans_is_unplanned():
    found = resolve("Order Completed", plans=("segment/",))
    assert found == Unresolved("unplanned", "no schema named 'Order Completed' in the plans segment/")


@pytest.mark.parametrize("name", ["Order Completed", "Order_Completed"])
def test_spaces_and_underscores_match(name):
    """(Unicode forms: test_unicode_names_from_self_name_match; an ASCII name has only one.)"""
    assert resolve(name).schema_id == "shop/Order_Completed/1-1.json"


@pytest.mark.parametrize("name", ["order completed", "Order  Completed", " Order Completed", "Order Completed ", "Order-Completed"])
def test_case_and_other_spelling_differences_do_not(name):
    """Matching is as strict as Protocols' except for what Reflekt's layout and unicode make equal."""
    assert resolve(name).keyword == "unplanned"


@pytest.mark.parametrize("name", [None, "", 5, ["Order Completed"], {"name": "x"}])
def test_an_event_without_a_usable_name_is_unplanned(name):
    assert resolve(name).keyword == "unplanned"


def test_a_10_kb_name_is_unplanned_and_quoted_briefly():
    found = resolve("A" * 10_000)
    assert found.keyword == "unplanned" and len(found.message) < 200


def test_a_name_at_the_limit_still_matches():
    name = "N" * MAX_EVENT_NAME_CHARS
    assert resolve(name, index=SchemaIndex([IndexEntry(f"shop/{name}/1-0.json", name)])).schema_id == f"shop/{name}/1-0.json"


def test_unicode_names_from_self_name_match():
    index = SchemaIndex([IndexEntry("shop/Cafe_Ordered/1-0.json", "Café Ordered ☕")])
    assert resolve(unicodedata.normalize("NFD", "Café Ordered ☕"), index=index).schema_id == "shop/Cafe_Ordered/1-0.json"
    assert resolve("Cafe Ordered", index=index).keyword == "unplanned"  # the self.name, not the folder, names it


@pytest.mark.parametrize("names", [
    ("Order Completed", "Order_Completed"),
    (unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "Café")),
])
def test_names_that_collide_after_normalisation_are_ambiguous_within_a_plan(names):
    """Two folders of one plan that only a space/underscore or a unicode form tells apart: the event is invalid
    with a message naming both, never matched to one of them at random."""
    index = SchemaIndex([IndexEntry("shop/A/1-0.json", names[0]), IndexEntry("shop/B/1-0.json", names[1])])
    found = resolve(names[0], index=index)
    assert found.keyword == "ambiguous"
    assert "shop/A/, shop/B/" in found.message and "rename" in found.message


def test_versions_of_one_folder_are_one_event_even_if_self_name_changed():
    index = SchemaIndex([IndexEntry("shop/Signed_Up/1-0.json", "Signed Up"), IndexEntry("shop/Signed_Up/2-0.json", "Signed_Up")])
    assert resolve("Signed Up", 2, index=index).schema_id == "shop/Signed_Up/2-0.json"


# -- entries and the index document -------------------------------------------------------------------------------

@pytest.mark.parametrize("schema_id,name", [
    ("jaffle_shop/Order_Completed/1-0.json", "Order Completed"),
    ("segment/demo/Test_Event/12-3.json", "Test Event"),
    ("Top/1-0.json", "Top"),
])
def test_reflekt_paths_imply_a_name(schema_id, name):
    assert entry_from_path(schema_id) == IndexEntry(schema_id, name)


@pytest.mark.parametrize("schema_id", ["x.json", "shop/Event/1.json", "shop/Event/01-0.json", "shop/Event/1-0-0.json", "shop/Event/v1.json"])
def test_files_outside_the_layout_have_no_name(schema_id):
    """They stay usable by schema_id; only name lookup skips them."""
    assert entry_from_path(schema_id) is None


@pytest.mark.parametrize("document,name", [
    ({"self": {"name": "Order Completed!"}}, "Order Completed!"),
    ({"self": {"name": ""}}, "Order Completed"),
    ({"self": {"name": 5}}, "Order Completed"),
    ({"self": "x"}, "Order Completed"),
    ([], "Order Completed"),
])
def test_self_name_names_a_schema_when_it_is_a_string(document, name):
    assert entry_from_document("shop/Order_Completed/1-0.json", document).name == name


def test_the_index_document_round_trips():
    entries = [IndexEntry("shop/Order_Completed/1-0.json", "Order Completed", '"0cc175b9c0f1b6a831c399e269772661"'),
               IndexEntry("shop/Identify/1-0.json", "Identify")]
    assert sorted(read_index_document(index_document(entries, "schemas/"), "schemas/")) == sorted(entries)


def test_an_index_without_etags_still_names_every_schema():
    """Indexes written before they carried ETags: the names are used, each schema is re-checked on its own."""
    document = {"format": 1, "prefix": "schemas/", "schemas": [{"id": "shop/Identify/1-0.json", "name": "Identify"}]}
    assert read_index_document(json.dumps(document).encode(), "schemas/") == [IndexEntry("shop/Identify/1-0.json", "Identify", "")]


@pytest.mark.parametrize("document,problem", [
    ({"format": 2, "prefix": "schemas/", "schemas": []}, "format"),
    ({"format": 1, "prefix": "other/", "schemas": []}, "'other/'"),
    ({"format": 1, "prefix": "schemas/", "schemas": {}}, "not a list"),
    ({"format": 1, "prefix": "schemas/", "schemas": [{"id": 5, "name": "x"}]}, "is not"),
    ({"format": 1, "prefix": "schemas/", "schemas": [{"id": "a/B/1-0.json", "name": "B", "etag": 5}]}, "etag optional"),
    ([], "format"),
])
def test_an_unusable_index_document_says_why(document, problem):
    with pytest.raises(ValueError, match=problem):
        read_index_document(json.dumps(document).encode(), "schemas/")


@pytest.mark.parametrize("body", [b"[" * 100_000, b"\xff", b"{"], ids=["nested-deeply", "not-utf-8", "cut-short"])
def test_an_index_that_is_not_json_says_so_as_a_value_error(body):
    """The store falls back to listing the schemas on a ValueError; anything else would fail every request."""
    with pytest.raises(ValueError):
        read_index_document(body, "schemas/")


def test_name_key_reads_underscores_as_spaces_and_unicode_as_nfc():
    assert name_key("Order_Completed") == name_key("Order Completed")
    assert name_key(unicodedata.normalize("NFD", "é")) == "é"
