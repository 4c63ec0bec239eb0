"""Checks a Reflekt project's schemas and uploads them to the registry's bucket with the index of their names;
nothing is uploaded unless every one passes (--prune deletes the ids it names).

Reflekt cannot push to S3 (GClunies/reflekt#96), so this closes the gap for pipelines that don't run Terraform.
Every schema must be usable, follow Reflekt's versioning, leave published versions as they are, and accept every
event the earlier MINORs of its MAJOR accept, in the project and in the bucket:

    python -m reflekt_registry.tools.publish path/to/project/schemas --plan --bucket my-registry-bucket   # CI
    python -m reflekt_registry.tools.publish path/to/project/schemas --bucket my-registry-bucket
    python -m reflekt_registry.tools.publish path/to/project/schemas --check   # offline: the project alone

Exit status: 0 when the publish can go (or went) ahead, 1 when a schema is bad or refused (nothing is uploaded),
2 when the bucket cannot be read or written, or changed while publishing (the message says how many schemas were
written before it: the writes are one request each, so a failure part-way leaves the ones before it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..config import DEFAULT_SCHEMA_PREFIX
from ..plans import entry_from_document, entry_from_path, index_document, index_key
from ..schemas import CompiledSchema, UnusableSchema, compile_schema, dialect_of, is_valid_schema_id
from .publish_plan import STATUSES, Plan, plan

# S3 keeps user metadata in HTTP headers: printable ASCII, 2 KB for all of an object's metadata together.
MAX_FORCE_REASON_LENGTH = 1024
# The metadata key (x-amz-meta-…) that records why a refused schema was published anyway.
FORCED_METADATA_KEY = "reflekt-registry-forced"
# Exit statuses, for CI (see the module's docstring).
EXIT_OK, EXIT_REFUSED, EXIT_BUCKET_FAILED = 0, 1, 2

# Reflekt keeps its own meta-schema here; it is not an event schema.
REFLEKT_META_DIR = ".reflekt"


@dataclass(frozen=True)
class SchemaFile:
    path: Path
    schema_id: str  # the path relative to schemas/, which the $id must equal
    problem: str | None
    risky_patterns: tuple[str, ...] = ()  # regexes open to ReDoS, allowed only by --allow-risky-patterns


def find_schemas(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if REFLEKT_META_DIR not in p.relative_to(root).parts)


def check_file(path: Path, root: Path, allow_risky_patterns: bool = False) -> SchemaFile:
    """Everything that would make the registry refuse the schema, found before it is uploaded.

    The most specific finding wins: a wrong $id or a meta-schema error says more than "cannot be compiled", and
    both say more than a risky pattern, which is a problem only unless `allow_risky_patterns`.
    """
    schema_id = path.relative_to(root).as_posix()
    body = path.read_bytes()
    compiled = compile_schema(schema_id, body)
    problem = compiled.reason if isinstance(compiled, UnusableSchema) else None
    try:
        document = json.loads(body)
    except ValueError:
        return SchemaFile(path, schema_id, problem)
    if not isinstance(document, dict) or dialect_of(document) is None:
        return SchemaFile(path, schema_id, problem)
    if not is_valid_schema_id(schema_id):
        problem = f"path {schema_id!r} is not a usable schema id (letters, digits, _ . - and /, ending in .json)"
    elif document.get("$id") != schema_id:
        problem = f"$id is {document.get('$id')!r} but the file is at {schema_id!r}; they must match"
    problem = _meta_schema_problem(document) or problem
    risky = compiled.risky_patterns if isinstance(compiled, CompiledSchema) else ()
    if risky and not problem and not allow_risky_patterns:
        problem = (f"pattern {risky[0]!r} can backtrack catastrophically on hostile input (ReDoS): a repeated group "
                   "matches the same text in many ways; rewrite it, or publish anyway with --allow-risky-patterns")
    return SchemaFile(path, schema_id, problem, risky)


def _meta_schema_problem(document: dict) -> str | None:
    """Checks the document against its draft's meta-schema; fastjsonschema only catches what it can't compile."""
    from jsonschema import exceptions, validators

    validator = validators.validator_for(document, default=validators.Draft7Validator)
    try:
        validator.check_schema(document)
    except exceptions.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        return f"not valid JSON Schema {dialect_of(document)} at {where}: {e.message}"
    return None


class BucketUnreadable(Exception):
    """The bucket's schemas cannot be listed or read, so the project cannot be compared with them."""


class BucketWriteFailed(Exception):
    """A write or delete failed part-way, or found the bucket changed since it was read; the message says how far
    it got."""


class Stored(NamedTuple):
    body: bytes
    etag: str  # what a conditional write expects to replace


def s3_client() -> Any:
    import boto3

    return boto3.client("s3", region_name=os.environ.get("REGISTRY_BUCKET_REGION") or None)


def read_bucket(s3: Any, bucket: str, prefix: str) -> dict[str, Stored]:
    """Every schema under the prefix, by id."""
    from botocore.exceptions import BotoCoreError, ClientError

    found = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                if item["Key"].endswith(".json"):
                    response = s3.get_object(Bucket=bucket, Key=item["Key"])
                    found[item["Key"].removeprefix(prefix)] = Stored(response["Body"].read(), response["ETag"])
    except (BotoCoreError, ClientError) as e:
        raise BucketUnreadable(f"cannot read s3://{bucket}/{prefix}: {e}") from e
    return found


def upload(files: list[SchemaFile], bucket: str, prefix: str, forced: dict[str, str] | None = None,
           s3: Any = None, published: dict[str, Stored] | None = None) -> None:
    """Writes the files at their ids; `forced` maps an id to the reason it was published despite a refusal.

    With `published` (what the plan was made against), each write is conditional, so a schema another publisher
    wrote in the meantime is never overwritten unseen: an id must still have the ETag it had, or still be absent.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or s3_client()
    forced = forced or {}
    for done, item in enumerate(files):
        metadata = {FORCED_METADATA_KEY: forced[item.schema_id]} if item.schema_id in forced else {}
        before = (published or {}).get(item.schema_id)
        condition = {} if published is None else {"IfMatch": before.etag} if before else {"IfNoneMatch": "*"}
        try:
            s3.put_object(Bucket=bucket, Key=prefix + item.schema_id, Body=item.path.read_bytes(),
                          ContentType="application/json", Metadata=metadata, **condition)
        except (BotoCoreError, ClientError) as e:
            changed = isinstance(e, ClientError) and e.response.get("Error", {}).get("Code") in (
                "PreconditionFailed", "ConditionalRequestConflict")
            why = ("changed since the bucket was read (another publish?); run publish again to compare with it"
                   if changed else f"cannot be written: {e}")
            raise BucketWriteFailed(f"s3://{bucket}/{prefix}{item.schema_id} {why}; {done} of {len(files)} "
                                    "schemas were uploaded before it") from e


def prune(s3: Any, bucket: str, prefix: str, schema_ids: list[str]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    for done, schema_id in enumerate(schema_ids):
        try:
            s3.delete_object(Bucket=bucket, Key=prefix + schema_id)
        except (BotoCoreError, ClientError) as e:
            raise BucketWriteFailed(f"s3://{bucket}/{prefix}{schema_id} cannot be deleted: {e}; {done} of "
                                    f"{len(schema_ids)} were pruned before it") from e


def render(result: Plan, compared_with: str | None) -> str:
    """The plan as CI shows it: one line per schema, each refusal's reasons under it."""
    offline = "plan against no bucket (offline): every schema is new"
    lines = [f"plan against {compared_with}" if compared_with else offline]
    width = max(len(status) for status in STATUSES)
    for entry in result.entries:
        note = f" ({entry.note})" if entry.note else ""
        lines.append(f"  {entry.status:<{width}}  {entry.schema_id}{note}")
        lines.extend(f"  {'':<{width}}    {'overridden: ' if entry.forced else ''}{p}" for p in entry.problems)
    counts = {status: sum(e.status == status for e in result.entries) for status in STATUSES}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items() if n))
    return "\n".join(lines)


def _force_reason(text: str) -> str:
    if not text.strip() or not text.isascii() or not text.isprintable() or len(text) > MAX_FORCE_REASON_LENGTH:
        raise argparse.ArgumentTypeError(f"a reason is a line of printable ASCII, up to {MAX_FORCE_REASON_LENGTH} "
                                         "characters (it is stored as S3 object metadata)")
    return text


def _schema_prefix(text: str) -> str:
    if not text.endswith("/") or text.startswith("/") or index_key(text).startswith(text):
        raise argparse.ArgumentTypeError(f"{text!r} must be a folder of the bucket, ending in / (e.g. schemas/), "
                                         f"that does not hold the index {index_key(text)}")
    return text


def write_index(files: list[SchemaFile], bucket: str, prefix: str, s3: Any = None) -> int:
    """Writes the index of schema names the registry looks events up in, for every schema now under the prefix:
    the project's files by their self.name, others only the bucket has (an earlier `aws s3 sync`, a version the
    project dropped) by their path; each with the ETag the listing shows, which spares a warm registry a request
    per schema to learn it is unchanged. Returns how many schemas it names."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or s3_client()
    entries = {item.schema_id: entry_from_document(item.schema_id, json.loads(item.path.read_bytes())) for item in files}
    try:
        etags = {item["Key"][len(prefix):]: item["ETag"]
                 for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                 for item in page.get("Contents", [])}
        for key in etags:
            if key not in entries and is_valid_schema_id(key):
                entries[key] = entry_from_path(key)
        named = [entry._replace(etag=etags.get(entry.schema_id, "")) for entry in entries.values() if entry is not None]
        s3.put_object(Bucket=bucket, Key=index_key(prefix), Body=index_document(named, prefix), ContentType="application/json")
    except (BotoCoreError, ClientError) as e:
        raise BucketWriteFailed(f"the schemas are published, but the index s3://{bucket}/{index_key(prefix)} cannot be "
                                f"written: {e}; run publish again") from e
    return len(named)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reflekt_registry.tools.publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("schemas_dir", type=Path, help="a Reflekt project's schemas/ folder")
    parser.add_argument("--bucket", default=os.environ.get("REGISTRY_BUCKET"), help="default: $REGISTRY_BUCKET")
    parser.add_argument("--prefix", type=_schema_prefix, default=os.environ.get("SCHEMA_PREFIX", DEFAULT_SCHEMA_PREFIX))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="only check; upload nothing. Compares with the bucket when one is named, else offline")
    mode.add_argument("--plan", action="store_true",
                      help="print what publishing would do (new, changed, refused, unchanged, bucket only); upload "
                           "nothing")
    parser.add_argument("--force", metavar="REASON", type=_force_reason,
                        help="publish schemas the gate refuses (a changed version, an incompatible MINOR), recording "
                             f"REASON on each as metadata {FORCED_METADATA_KEY}")
    parser.add_argument("--force-id", metavar=("ID", "REASON"), nargs=2, action="append", default=[],
                        help="like --force, for one schema id only (repeatable)")
    parser.add_argument("--prune", metavar="ID", nargs="+", default=[],
                        help="delete these ids from the bucket; they must no longer be in the project")
    parser.add_argument("--allow-risky-patterns", action="store_true",
                        help="publish schemas whose regexes are open to ReDoS, with a warning, instead of refusing them")
    parser.add_argument("--allow-unknown-keywords", action="store_true",
                        help="treat keywords the compatibility check does not model as annotations instead of "
                             "refusing changes to them")
    args = parser.parse_args(argv)
    try:
        forced = {schema_id: _force_reason(reason) for schema_id, reason in args.force_id}
    except argparse.ArgumentTypeError as e:
        parser.error(f"--force-id: {e}")
    if not args.schemas_dir.is_dir():
        parser.error(f"{args.schemas_dir} is not a directory")
    if not (args.check or args.plan) and not args.bucket:
        parser.error("--bucket (or REGISTRY_BUCKET) is required to publish; --check and --plan work offline too")
    root = args.schemas_dir.resolve()
    files = [check_file(path, root, args.allow_risky_patterns) for path in find_schemas(root)]
    bad = [f for f in files if f.problem]
    for item in bad:
        print(f"{item.path}: {item.problem}", file=sys.stderr)
    for item in files:
        if not item.problem and item.risky_patterns:
            patterns = ", ".join(repr(p) for p in item.risky_patterns)
            print(f"{item.path}: warning: pattern {patterns} is open to ReDoS (allowed by --allow-risky-patterns)", file=sys.stderr)
    if not files:
        print(f"no schemas found under {root}", file=sys.stderr)
        return EXIT_REFUSED
    if bad:
        print(f"{len(bad)} of {len(files)} schemas are bad; nothing was uploaded", file=sys.stderr)
        return EXIT_REFUSED
    s3 = s3_client() if args.bucket else None
    location = f"s3://{args.bucket}/{args.prefix}" if args.bucket else None
    try:
        live = read_bucket(s3, args.bucket, args.prefix) if s3 else None
    except BucketUnreadable as e:
        print(e, file=sys.stderr)
        return EXIT_BUCKET_FAILED
    project = {item.schema_id: item.path.read_bytes() for item in files}
    bodies = {schema_id: stored.body for schema_id, stored in live.items()} if live is not None else None
    result = plan(project, bodies, force_reason=args.force, forced=forced, prune=args.prune,
                  allow_unknown_keywords=args.allow_unknown_keywords)
    if args.plan:
        print(render(result, location))
        return EXIT_REFUSED if result.refused else EXIT_OK
    for entry in result.refused:
        print(f"{root / entry.schema_id}: refused", file=sys.stderr)
        for problem in entry.problems:
            print(f"  {problem}", file=sys.stderr)
    if result.refused:
        print(f"{len(result.refused)} of {len(files)} schemas are refused; nothing was uploaded", file=sys.stderr)
        return EXIT_REFUSED
    for entry in result.entries:
        if entry.forced:
            print(f"{root / entry.schema_id}: warning: published despite {len(entry.problems)} problem(s), forced: "
                  f"{entry.forced}", file=sys.stderr)
    if args.check:
        print(f"{len(files)} schemas are good" + (f" (compared with {location})" if location else ""))
        return EXIT_OK
    by_id = {item.schema_id: item for item in files}
    try:
        upload([by_id[e.schema_id] for e in result.uploads], args.bucket, args.prefix,
               {e.schema_id: e.forced for e in result.uploads if e.forced}, s3, live)
        prune(s3, args.bucket, args.prefix, [e.schema_id for e in result.prunes])
        named = write_index(files, args.bucket, args.prefix, s3)
    except BucketWriteFailed as e:
        print(e, file=sys.stderr)
        return EXIT_BUCKET_FAILED
    unchanged = len(files) - len(result.uploads)
    print(f"uploaded {len(result.uploads)} schemas to {location}" + (f", {unchanged} unchanged" if unchanged else "")
          + (f", pruned {len(result.prunes)}" if result.prunes else ""))
    print(f"indexed {named} schemas by name in s3://{args.bucket}/{index_key(args.prefix)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
