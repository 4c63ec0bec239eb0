"""Cached validators for the same schemas, each wrapped as a pipeline.Judge that returns every violation's message
(the registry reports every violation, so each baseline is made to find them all too).

- fastjsonschema, compiled by the registry's own compile_schema: what the handler runs, and the floor's validator.
- python-jsonschema's Draft7Validator, built once per schema: the original's library with the original's waste
  (a validator and an S3 download per event, see original.py) taken away.
- jsonschema-rs: the fastest validator available to Python, as a lower bound for the validation step.

Both jsonschema libraries check formats here, so that all three judge the event mix identically (test_warm checks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import fastjsonschema
import jsonschema
import jsonschema_rs

from pipeline import Judge
from reflekt_registry.schemas import CompiledSchema, compile_schema


def fastjsonschema_judge(documents: Mapping[str, bytes]) -> Judge:
    compiled = {}
    for schema_id, body in documents.items():
        schema = compile_schema(schema_id, body)
        assert isinstance(schema, CompiledSchema), schema
        compiled[schema_id] = schema.validate

    def judge(schema_id: str, payload: dict) -> list[str]:
        try:
            compiled[schema_id](payload)
        except fastjsonschema.JsonSchemaValuesException as e:  # fast_fail=False: every violation at once
            return [error.message for error in e.errors]
        except fastjsonschema.JsonSchemaValueException as e:
            return [e.message]
        return []

    return judge


def jsonschema_judge(documents: Mapping[str, bytes]) -> Judge:
    validators = {
        schema_id: jsonschema.Draft7Validator(json.loads(body), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
        for schema_id, body in documents.items()
    }

    def judge(schema_id: str, payload: dict) -> list[str]:
        return [error.message for error in validators[schema_id].iter_errors(payload)]

    return judge


def jsonschema_rs_judge(documents: Mapping[str, bytes]) -> Judge:
    validators = {schema_id: jsonschema_rs.Draft7Validator(json.loads(body), validate_formats=True)
                  for schema_id, body in documents.items()}

    def judge(schema_id: str, payload: dict) -> list[str]:
        validator = validators[schema_id]
        if validator.is_valid(payload):  # its fast path: no error objects built for the common, valid case
            return []
        return [error.message for error in validator.iter_errors(payload)]

    return judge
