"""Checks a Reflekt project's schemas and uploads them to the registry's bucket, all or nothing.

Reflekt cannot push to S3 (GClunies/reflekt#96), so this closes the gap for pipelines that don't run Terraform:

    python -m reflekt_registry.tools.publish path/to/project/schemas --bucket my-registry-bucket
    python -m reflekt_registry.tools.publish path/to/project/schemas --check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DEFAULT_SCHEMA_PREFIX
from ..plans import INDEX_KEY, entry_from_document, entry_from_path, index_document
from ..schemas import CompiledSchema, UnusableSchema, compile_schema, dialect_of, is_valid_schema_id

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


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3", region_name=os.environ.get("REGISTRY_BUCKET_REGION") or None)


def upload(files: list[SchemaFile], bucket: str, prefix: str) -> None:
    s3 = _s3_client()
    for item in files:
        s3.put_object(Bucket=bucket, Key=prefix + item.schema_id, Body=item.path.read_bytes(), ContentType="application/json")


def write_index(files: list[SchemaFile], bucket: str, prefix: str) -> int:
    """Writes the index of schema names the registry looks events up in, for every schema now under the prefix:
    the files just uploaded by their self.name, others already there (an earlier `aws s3 sync`) by their path.
    Returns how many schemas it names."""
    s3 = _s3_client()
    entries = {item.schema_id: entry_from_document(item.schema_id, json.loads(item.path.read_bytes())) for item in files}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for key in (item["Key"][len(prefix):] for item in page.get("Contents", [])):
            if key not in entries and is_valid_schema_id(key):
                entries[key] = entry_from_path(key)
    named = [entry for entry in entries.values() if entry is not None]
    s3.put_object(Bucket=bucket, Key=INDEX_KEY, Body=index_document(named, prefix), ContentType="application/json")
    return len(named)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reflekt_registry.tools.publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("schemas_dir", type=Path, help="a Reflekt project's schemas/ folder")
    parser.add_argument("--bucket", default=os.environ.get("REGISTRY_BUCKET"), help="default: $REGISTRY_BUCKET")
    parser.add_argument("--prefix", default=os.environ.get("SCHEMA_PREFIX", DEFAULT_SCHEMA_PREFIX))
    parser.add_argument("--check", action="store_true", help="only check the schemas; upload nothing")
    parser.add_argument("--allow-risky-patterns", action="store_true",
                        help="publish schemas whose regexes are open to ReDoS, with a warning, instead of refusing them")
    args = parser.parse_args(argv)
    if not args.schemas_dir.is_dir():
        parser.error(f"{args.schemas_dir} is not a directory")
    if not args.check and not args.bucket:
        parser.error("--bucket (or REGISTRY_BUCKET) is required unless --check is given")
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
        return 1
    if bad:
        print(f"{len(bad)} of {len(files)} schemas are bad; nothing was uploaded", file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(files)} schemas are good")
        return 0
    upload(files, args.bucket, args.prefix)
    print(f"uploaded {len(files)} schemas to s3://{args.bucket}/{args.prefix}")
    named = write_index(files, args.bucket, args.prefix)
    print(f"indexed {named} schemas by name in s3://{args.bucket}/{INDEX_KEY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
