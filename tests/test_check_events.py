"""check_events: a file of events judged offline as the registry judges them, for app teams' CI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from helpers import (EXAMPLE_SCHEMAS, OWN_PLANS_AND_CONTROLS, REPO, TEST_EVENT, THREE_SOURCES, TRACKING_PLAN_SCHEMAS,
                     both_projects, config_file, judged_by_source, track)
from reflekt_registry.controls import Controls, Policy
from reflekt_registry.tools.check_events import (EXIT_INVALID, EXIT_UNREADABLE, EXIT_VALID, MAX_VIOLATIONS_SHOWN, main,
                                                 source_policy)
from s3_support import BUCKET, create_bucket_with_schemas

IDENTIFY = {"type": "identify", "userId": "u1", "traits": {"schema_id": "jaffle_shop/Identify/1-0.json", "email": "a@b.co"}}
ALIAS = {"type": "alias", "userId": "u1", "previousId": "anon"}


def jsonl(tmp_path: Path, *items: object, name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items))
    return path


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_all_valid_exits_0_with_a_summary_per_schema(tmp_path, capsys):
    """A table of schema_id, valid, invalid, sorted, and a total; events without a schema under (none)."""
    events = jsonl(tmp_path, track(test_property="x"), IDENTIFY, ALIAS)
    code, out, _ = run(capsys, events, "--schemas", EXAMPLE_SCHEMAS)
    assert code == EXIT_VALID
    assert [line.split() for line in out.splitlines()] == [
        ["schema_id", "valid", "invalid"],
        ["(none)", "1", "0"],
        ["jaffle_shop/Identify/1-0.json", "1", "0"],
        ["segment/demo/Test_Event/1-0.json", "1", "0"],
        [],
        ["3", "events:", "3", "valid,", "0", "invalid"],
    ]
    assert len({len(line) for line in out.splitlines()[:4]}) == 1, "columns are aligned"


def test_a_violation_exits_1_naming_the_line_batch_index_and_message(tmp_path, capsys):
    """Lines may be single events or captured {"batch": [...]} requests; each violation says where it is."""
    events = jsonl(tmp_path, track(test_property="x"), {"batch": [IDENTIFY, track(test_property=3)]},
                   track(schema_id="jaffle_shop/Nope/1-0.json"))
    code, out, _ = run(capsys, events, "--schemas", EXAMPLE_SCHEMAS)
    assert code == EXIT_INVALID
    assert "  line 2 batch[1]: $.properties.test_property must be string" in out.splitlines()
    assert "  line 3: no schema with $id 'jaffle_shop/Nope/1-0.json'" in out
    assert out.splitlines()[-1] == "4 events: 2 valid, 2 invalid"


def test_only_the_first_violations_of_a_schema_are_shown(tmp_path, capsys):
    """A file failing the same way on every line still gives a short report."""
    events = jsonl(tmp_path, *[track(test_property=n) for n in range(MAX_VIOLATIONS_SHOWN + 2)])
    code, out, _ = run(capsys, events, "--schemas", EXAMPLE_SCHEMAS)
    assert code == EXIT_INVALID
    assert [line for line in out.splitlines() if line.startswith("  ")] == [
        *[f"  line {n}: $.properties.test_property must be string" for n in range(1, MAX_VIOLATIONS_SHOWN + 1)],
        "  … and 2 more violations",
    ]


@pytest.mark.parametrize(("lines", "says"), [
    ([track(test_property="x"), "", '{"type": "track",'], "line 3 is not JSON: Expecting"),
    (["[1, 2]"], "line 1 is not a Segment event"),
    ([{"type": "trak", "event": "Typo"}], "line 1 is not a Segment event: expected an object whose type is one of alias,"),
    ([{"batch": [track(test_property="x"), {"event": "no type"}]}], "line 1 batch[1] is not a Segment event"),
    ([{"batch": {"type": "track"}}], "line 1: batch is not an array of events"),
    ([], "holds no events, so nothing was checked"),
])
def test_unreadable_input_exits_2_naming_the_line(tmp_path, capsys, lines, says):
    """Nothing is summarised from a file that is not what it should be: the error says where it went wrong."""
    code, out, err = run(capsys, jsonl(tmp_path, *lines), "--schemas", EXAMPLE_SCHEMAS)
    assert (code, out) == (EXIT_UNREADABLE, "")
    assert says in err


def test_a_file_that_is_not_utf8_exits_2(tmp_path, capsys):
    """Bytes that are not text name their line too."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(json.dumps(track(test_property="x")).encode() + b"\n\"\xff\"\n")
    code, _, err = run(capsys, path, "--schemas", EXAMPLE_SCHEMAS)
    assert code == EXIT_UNREADABLE and "line 2 is not UTF-8 text" in err


def test_a_gzipped_export_is_read_as_it_is(tmp_path, capsys):
    """Segment's S3 export writes gzipped JSON lines; no need to unpack them first."""
    path = tmp_path / "export.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(tmp_path, track(test_property="x"), track(test_property=1)).read_bytes()))
    code, out, _ = run(capsys, path, "--schemas", EXAMPLE_SCHEMAS)
    assert (code, out.splitlines()[-1]) == (EXIT_INVALID, "2 events: 1 valid, 1 invalid")


def test_a_truncated_gzip_file_exits_2(tmp_path, capsys):
    """A download cut short is unreadable, not a set of valid events."""
    path = tmp_path / "export.jsonl.gz"
    path.write_bytes(gzip.compress(json.dumps(track(test_property="x")).encode() * 100)[:40])
    code, out, err = run(capsys, path, "--schemas", EXAMPLE_SCHEMAS)
    assert (code, out) == (EXIT_UNREADABLE, "")
    assert f"cannot read {path}" in err


def test_a_missing_events_file_exits_2(tmp_path, capsys):
    """A CI step that points at the wrong file fails, and never as "invalid events"."""
    code, _, err = run(capsys, tmp_path / "missing.jsonl", "--schemas", EXAMPLE_SCHEMAS)
    assert code == EXIT_UNREADABLE and "cannot read" in err


@pytest.mark.parametrize("schemas", [
    ["--schemas", "no/such/dir"],
    [],
    ["--schemas", str(EXAMPLE_SCHEMAS), "--bucket", BUCKET],
], ids=["missing-dir", "no-schemas", "both"])
def test_wrong_schema_arguments_exit_2(tmp_path, capsys, schemas):
    """The schemas are a folder or a bucket, and must be given: there is no default to validate against by mistake."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(jsonl(tmp_path, track(test_property="x"))), *schemas])
    assert exit_info.value.code == EXIT_UNREADABLE


def test_schemas_from_the_registry_bucket(tmp_path, capsys, moto_url):
    """--bucket reads the schemas the deployed registry reads, with the same verdicts."""
    events = jsonl(tmp_path, track(test_property="x"), track(test_property=3))
    create_bucket_with_schemas(boto3.client("s3", region_name="us-east-1"))
    code, out, _ = run(capsys, events, "--bucket", BUCKET, "--prefix", "schemas", "--region", "us-east-1")
    assert code == EXIT_INVALID
    assert [TEST_EVENT, "1", "1"] in [line.split() for line in out.splitlines()]


def test_an_unreachable_bucket_exits_2(tmp_path, capsys, moto_url):
    """When the schemas cannot be read, no event is judged."""
    code, out, err = run(capsys, jsonl(tmp_path, track(test_property="x")), "--bucket", "no-such-bucket")
    assert (code, out) == (EXIT_UNREADABLE, "")
    assert "cannot read the schemas" in err


def test_the_documented_command_reads_stdin(tmp_path):
    """`python -m reflekt_registry.tools.check_events - --schemas DIR`, fed by a pipe, as a CI step would run it."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "function")}
    result = subprocess.run([sys.executable, "-m", "reflekt_registry.tools.check_events", "-", "--schemas", str(EXAMPLE_SCHEMAS)],
                            input=json.dumps(track(test_property=3)) + "\n", capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == EXIT_INVALID
    assert "  line 1: $.properties.test_property must be string" in result.stdout


def test_source_policy_is_the_plans_and_controls_the_registry_holds_that_source_to(tmp_path):
    """--config and --source give check-events the same Policy the registry gives that source's events."""
    document = {**THREE_SOURCES, "controls": {"violations": "allow"}}
    path = config_file(tmp_path, document)
    assert source_policy(path, "ios") == Policy(("jaffle_shop/",), Controls(violations="allow"))
    assert source_policy(path, "server") == Policy((), Controls(violations="allow"))
    assert source_policy(config_file(tmp_path, {"version": 1, "plans": ["segment/demo"]}), None) == Policy(("segment/demo/",))


@pytest.mark.parametrize("source,counts", [
    ("web", "3 events: 1 valid, 2 invalid"),
    ("ios", "3 events: 2 valid, 1 invalid"),  # violations allowed
    ("server", "3 events: 1 valid, 2 invalid"),  # unplanned allowed; Order Completed ambiguous
])
def test_a_file_is_judged_as_the_named_source_would_judge_it(tmp_path, capsys, source, counts):
    """The same captured file, as each source: the registry's verdicts for that source, by its plans and controls."""
    schemas = both_projects(tmp_path / "schemas")
    events = jsonl(tmp_path, {"batch": judged_by_source(source)})
    result, out, _ = run(capsys, events, "--schemas", schemas, "--config", config_file(tmp_path, OWN_PLANS_AND_CONTROLS),
                         "--source", source)
    assert (result, out.splitlines()[-1]) == (EXIT_INVALID, counts)


def test_plans_come_from_the_document_or_from_plan_not_both(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(jsonl(tmp_path, track())), "--schemas", str(EXAMPLE_SCHEMAS), "--plan", "acme/",
              "--config", str(config_file(tmp_path, THREE_SOURCES)), "--source", "web"])
    assert "--plan and --config both name plans" in capsys.readouterr().err


def test_a_file_judged_as_a_source_reports_as_usual(tmp_path, capsys):
    code, out, _ = run(capsys, jsonl(tmp_path, track(test_property="x")), "--schemas", EXAMPLE_SCHEMAS,
                       "--config", config_file(tmp_path, THREE_SOURCES), "--source", "web")
    assert code == EXIT_VALID
    assert out.splitlines()[-1] == "1 events: 1 valid, 0 invalid"


@pytest.mark.parametrize("document,source,message", [
    (THREE_SOURCES, "android", "--source 'android' is not in the document: name one of web, ios, server"),
    (THREE_SOURCES, None, "--source is required: name one of web, ios, server"),
    ({"version": 1}, "web", "--source web: the document declares no sources"),
    ({"version": 1, "controls": {"violatons": "allow"}}, None, "controls.violatons: unknown key"),
], ids=["unknown-source", "no-source", "no-sources", "bad-document"])
def test_a_bad_config_or_source_exits_2_naming_it(tmp_path, capsys, document, source, message):
    path = config_file(tmp_path, document)
    code, _, err = run(capsys, jsonl(tmp_path, track(test_property="x")), "--schemas", EXAMPLE_SCHEMAS, "--config", path,
                       *(["--source", source] if source else []))
    assert code == EXIT_UNREADABLE
    assert err.startswith(f"check_events: {path}: {message}")


def test_source_without_config_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        main([str(jsonl(tmp_path, track())), "--schemas", str(EXAMPLE_SCHEMAS), "--source", "web"])
    assert excinfo.value.code == 2
    assert "--source needs --config" in capsys.readouterr().err


def order(version: int | None = None, **properties: object) -> dict:
    event = {"type": "track", "event": "Order Completed", "userId": "u1", "properties": properties}
    if version is not None:
        event["context"] = {"protocols": {"event_version": version}}
    return event


def test_events_without_schema_ids_are_judged_by_name_as_the_registry_judges_them(tmp_path, capsys):
    """The same resolution as the registry: by name and event_version, unplanned events under their own row."""
    events = jsonl(tmp_path, order(order_id="o1", revenue=1), order(2, order_id="o2", total=1, currency="USD"),
                   order(2, order_id="o3", revenue=1), {"type": "track", "event": "Order Shipped", "properties": {}})
    code, out, _ = run(capsys, events, "--schemas", TRACKING_PLAN_SCHEMAS, "--plan", "acme")
    assert code == EXIT_INVALID
    rows = [line.split() for line in out.splitlines()]
    assert ["(unplanned)", "0", "1"] in rows
    assert ["acme/Order_Completed/1-1.json", "1", "0"] in rows and ["acme/Order_Completed/2-0.json", "1", "1"] in rows
    assert "  line 4: no schema named 'Order Shipped' in the plans acme/" in out


def test_a_plan_without_the_name_makes_it_unplanned(tmp_path, capsys):
    code, out, _ = run(capsys, jsonl(tmp_path, order(order_id="o1", revenue=1)), "--schemas", TRACKING_PLAN_SCHEMAS, "--plan", "other/")
    assert code == EXIT_INVALID and "(unplanned)" in out


def test_batch_level_context_names_the_version_as_in_the_registry(tmp_path, capsys):
    """analytics.js can put context in the envelope; the registry merges it into each event, and so does the check."""
    envelope = {"batch": [order(order_id="o1", total=1, currency="USD")], "context": {"protocols": {"event_version": 2}}}
    code, out, _ = run(capsys, jsonl(tmp_path, envelope), "--schemas", TRACKING_PLAN_SCHEMAS)
    assert code == EXIT_VALID and ["acme/Order_Completed/2-0.json", "1", "0"] in [line.split() for line in out.splitlines()]


def test_a_plan_that_is_no_id_prefix_is_refused_as_the_document_would_refuse_it(tmp_path, capsys):
    code, _, err = run(capsys, jsonl(tmp_path, track()), "--schemas", EXAMPLE_SCHEMAS, "--plan", "")
    assert code == EXIT_UNREADABLE
    assert "--plan[0]" in err and "is not a $id prefix" in err
