"""Validates a file of Segment events against Reflekt schemas, offline, exactly as the registry would: for CI.

    python -m reflekt_registry.tools.check_events events.jsonl --schemas path/to/project/schemas
    python -m reflekt_registry.tools.check_events export.jsonl.gz --bucket my-registry-bucket [--prefix schemas/]
    python -m reflekt_registry.tools.check_events events.jsonl --schemas DIR --config config.json --source web

Events without a schema_id are looked up by name and version in the tracking plans (--plan, repeatable; by
default every schema). Each line holds one event or a {"batch": [...]} envelope (a Segment export, or requests an app made). Prints the
valid and invalid events per schema with the first violations, then exits 0 when every event is valid, 1 when any
is invalid, and 2 when the events or the schemas cannot be read.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULT_SCHEMA_PREFIX, S3Location, s3_from_env
from ..controls import DEFAULT_POLICY, Policy
from ..document import ENVIRONMENT_SOURCE, Environment, Source, parse, parse_plans
from ..errors import ConfigError, SchemaStoreUnavailableError
from ..local.aws import local_s3_client
from ..metrics import listed_under
from ..payload import BATCH_LEVEL_OBJECTS, CALL_TYPES, inherit_batch_level
from ..request import GZIP_MAGIC
from ..schemas import open_store
from ..validator import Validator

EXIT_VALID, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
# Enough to see what is wrong with a schema's events; a file failing the same way on every line stays readable.
MAX_VIOLATIONS_SHOWN = 3
# One run is short: a schema never needs fetching twice.
SCHEMA_CACHE_TTL = math.inf


class UnreadableInput(Exception):
    """The file is not JSON lines of Segment events; the message names the line."""


@dataclass
class SchemaReport:
    valid: int = 0
    invalid: int = 0
    violations: list[str] = field(default_factory=list)  # "line N: message", at most MAX_VIOLATIONS_SHOWN
    unshown: int = 0


def read_events(lines: Iterable[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, event) for each event: where is "line 3", or "line 3 batch[1]" inside an envelope."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line.rstrip())  # without its newline, an error past the end points at this line
        except json.JSONDecodeError as e:
            raise UnreadableInput(f"line {number} is not JSON: {e.msg} at column {e.colno}") from None
        except UnicodeDecodeError:
            raise UnreadableInput(f"line {number} is not UTF-8 text") from None
        except RecursionError:
            raise UnreadableInput(f"line {number} is nested too deeply to be an event") from None
        if isinstance(item, dict) and "batch" in item:
            batch = item["batch"]
            if not isinstance(batch, list):
                raise UnreadableInput(f"line {number}: batch is not an array of events")
            # As the registry does: a verdict reads context too (protocols.event_version, traits).
            shared = {name: item[name] for name in BATCH_LEVEL_OBJECTS if isinstance(item.get(name), dict)}
            for index, event in enumerate(batch):
                where, checked = _checked(event, f"line {number} batch[{index}]")
                inherit_batch_level(checked, shared)
                yield where, checked
        else:
            yield _checked(item, f"line {number}")


def _checked(event: Any, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or event["type"] not in CALL_TYPES:
        raise UnreadableInput(f"{where} is not a Segment event: expected an object whose type is one of {', '.join(sorted(CALL_TYPES))}")
    return where, event


def check(events: Iterable[tuple[str, dict[str, Any]]], validator: Validator, policy: Policy = DEFAULT_POLICY) -> dict[str, SchemaReport]:
    """Counts per schema the events the registry would send to the valid and to the invalid source."""
    reports: dict[str, SchemaReport] = {}
    for where, event in events:
        verdict = validator.check(event, policy)
        report = reports.setdefault(listed_under(verdict.schema_id, verdict.unplanned), SchemaReport())
        if not verdict.blocked:
            report.valid += 1
            continue
        report.invalid += 1
        for violation in verdict.violations:
            if len(report.violations) < MAX_VIOLATIONS_SHOWN:
                report.violations.append(f"{where}: {violation.message}")
            else:
                report.unshown += 1
    return reports


# CI judges events and forwards none: the document needs no keys for Segment, as for the local server with files.
_NO_FORWARDING = Environment(Source(ENVIRONMENT_SOURCE, (), DEFAULT_POLICY, None, None), forwarding=False, local=True)


def source_policy(config: Path, name: str | None) -> Policy:
    """The plans and controls the registry holds source `name` of the document in `config` to.

    Raises ConfigError naming the key at fault, or the source that is not there."""
    document = parse(config.read_bytes(), _NO_FORWARDING)
    if not document.declared:
        if name is not None:
            raise ConfigError(f"--source {name}: the document declares no sources")
        return document.sources[0].policy
    names = [source.name for source in document.sources]
    if name not in names:
        raise ConfigError(f"--source {'is required' if name is None else repr(name) + ' is not in the document'}: "
                          f"name one of {', '.join(names)}")
    return document.sources[names.index(name)].policy


def render(reports: dict[str, SchemaReport]) -> str:
    width = max(len("schema_id"), *map(len, reports))
    lines = [f"{'schema_id':<{width}}  {'valid':>7}  {'invalid':>7}"]
    for schema_id, report in sorted(reports.items()):
        lines.append(f"{schema_id:<{width}}  {report.valid:>7}  {report.invalid:>7}")
        lines += [f"  {violation}" for violation in report.violations]
        if report.unshown:
            lines.append(f"  … and {report.unshown} more violations")
    valid = sum(r.valid for r in reports.values())
    invalid = sum(r.invalid for r in reports.values())
    lines.append(f"\n{valid + invalid} events: {valid} valid, {invalid} invalid")
    return "\n".join(lines)


def read_lines(path: str) -> Iterator[bytes]:
    """The file's lines, or stdin's for "-"; gzip (as Segment's S3 export writes) is recognised by its first bytes."""
    with nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb") as raw:
        yield from gzip.GzipFile(fileobj=raw) if raw.peek(2)[:2] == GZIP_MAGIC else raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reflekt_registry.tools.check_events", description=__doc__.split("\n\n")[0])
    parser.add_argument("events", help="a JSON lines file of events or {\"batch\": [...]} envelopes; - reads stdin")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--schemas", type=Path, metavar="DIR", help="a Reflekt project's schemas/ folder")
    source.add_argument("--bucket", help="the registry's schema bucket")
    parser.add_argument("--prefix", default=DEFAULT_SCHEMA_PREFIX, help=f"key prefix of the schemas in the bucket (default {DEFAULT_SCHEMA_PREFIX})")
    parser.add_argument("--region", help="the bucket's region (default: the AWS configuration's)")
    parser.add_argument("--plan", action="append", default=[], metavar="PREFIX",
                        help="a tracking plan: the $id prefix events are looked up by name in (e.g. jaffle_shop/); repeatable")
    parser.add_argument("--config", type=Path, metavar="FILE", help="the registry's configuration document, for the "
                        "plans and controls events are judged by (instead of --plan)")
    parser.add_argument("--source", metavar="NAME", help="judge the events as this source of --config would be judged")
    args = parser.parse_args(argv)
    if args.schemas is not None and not args.schemas.is_dir():
        parser.error(f"--schemas {args.schemas} is not a directory")
    if args.source is not None and args.config is None:
        parser.error("--source needs --config, the document that declares the source")
    if args.plan and args.config is not None:
        parser.error("--plan and --config both name plans: give the plans in the document, or drop --config")
    if args.config is None:
        try:
            policy = Policy(parse_plans(args.plan, "--plan"))
        except ConfigError as e:
            return _fail(str(e))
    else:
        try:
            policy = source_policy(args.config, args.source)
        except OSError as e:
            return _fail(f"cannot read {args.config}: {e.strerror or e}")
        except ConfigError as e:
            return _fail(f"{args.config}: {e}")
    prefix = args.prefix if not args.prefix or args.prefix.endswith("/") else args.prefix + "/"
    if args.schemas is not None:
        store = open_store(args.schemas, SCHEMA_CACHE_TTL)
    else:
        endpoint, credentials = s3_from_env()
        try:
            s3 = local_s3_client(endpoint._replace(region=args.region or endpoint.region), credentials)
        except ConfigError as e:
            return _fail(str(e))
        store = open_store(S3Location(args.bucket, args.region, prefix), SCHEMA_CACHE_TTL, s3)
    validator = Validator(store)
    try:
        reports = check(read_events(read_lines(args.events)), validator, policy)
    except (OSError, EOFError, zlib.error) as e:  # missing, unreadable, or a broken gzip stream
        return _fail(f"cannot read {args.events}: {e.strerror if isinstance(e, OSError) and e.strerror else e}")
    except UnreadableInput as e:
        return _fail(f"{args.events}: {e}")
    except SchemaStoreUnavailableError as e:
        return _fail(f"cannot read the schemas: {e}")
    if not reports:
        return _fail(f"{args.events} holds no events, so nothing was checked")
    print(render(reports))
    return EXIT_INVALID if any(report.invalid for report in reports.values()) else EXIT_VALID


def _fail(message: str) -> int:
    print(f"check_events: {message}", file=sys.stderr)
    return EXIT_UNREADABLE


if __name__ == "__main__":
    sys.exit(main())
