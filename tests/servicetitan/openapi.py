"""Validate JSON against ServiceTitan's own OpenAPI documents (read from ../shared/reference, never
copied): OpenAPI 3.x schemas become JSON Schema 2020-12 with ``nullable`` folded into ``type`` and
``#/components/schemas/...`` references resolved inside each document. A missing document fails
the test under CI (tests/reference_docs.py) and skips it elsewhere."""

from __future__ import annotations

import json
from functools import cache

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.reference_docs import REFERENCE_DIR, require_reference

SPEC_DIR = REFERENCE_DIR / "servicetitan-openapi"


def _fold_nullable(node):
    if isinstance(node, dict):
        node = {k: _fold_nullable(v) for k, v in node.items()}
        if node.pop("nullable", False):
            if "type" in node:
                types = node["type"] if isinstance(node["type"], list) else [node["type"]]
                node["type"] = [*types, "null"] if "null" not in types else types
            elif "$ref" in node or "oneOf" in node or "allOf" in node:
                node = {"anyOf": [{k: v for k, v in node.items()}, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_fold_nullable(v) for v in node]
    return node


@cache
def _document(name: str) -> tuple[str, Registry]:
    path = require_reference(SPEC_DIR / f"{name}-v2.json", f"ServiceTitan's OpenAPI document {name}-v2.json")
    doc = _fold_nullable(json.loads(path.read_text()))
    uri = f"urn:servicetitan:{name}"
    registry = Registry().with_resource(uri, Resource.from_contents(doc, default_specification=DRAFT202012))
    return uri, registry


def validator(spec: str, schema_name: str, array: bool = False) -> Draft202012Validator:
    uri, registry = _document(spec)
    ref = {"$ref": f"{uri}#/components/schemas/{schema_name}"}
    return Draft202012Validator({"type": "array", "items": ref} if array else ref, registry=registry)


def assert_valid(spec: str, schema_name: str, instance, array: bool = False) -> None:
    errors = sorted(validator(spec, schema_name, array).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{schema_name}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors[:5])
