"""The simulator's /entity/{Endpoint}/{Version}/swagger.json and /{Entity}/$adHocSchema, generated
from its own entity model (schema.ENTITIES), in the shape of Acumatica's OpenAPI 3.0 documents:
value-object schemas, an Entity base every entity extends with allOf, per entity the operations
GetList / PutEntity / GetById / GetByKeys / DeleteById / DeleteByKeys / GetAdHocSchema and one
InvokeAction_<Action> per action (clients such as easy-acumatica build their services from these
operation ids)."""

from __future__ import annotations

from typing import Any

from simulators.acumatica.schema import ENTITIES, EntityDef

VALUE_TYPES = {"S": ("StringValue", {"type": "string"}), "D": ("DecimalValue", {"type": "number", "format": "double"}),
               "B": ("BooleanValue", {"type": "boolean"}), "I": ("IntValue", {"type": "integer", "format": "int32"}),
               "DT": ("DateTimeValue", {"type": "string", "format": "date-time"}),
               "G": ("GuidValue", {"type": "string", "format": "uuid"})}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _entity_schema(edef: EntityDef) -> dict:
    props: dict[str, Any] = {name: _ref(VALUE_TYPES[kind][0]) for name, kind in edef.fields.items()}
    props.update({name: _ref(linked.name) for name, linked in edef.linked.items()})
    props.update({name: {"type": "array", "items": _ref(detail.name)} for name, detail in edef.details.items()})
    return {"allOf": [_ref("Entity"), {"type": "object", "properties": dict(sorted(props.items()))}]}


def _all_types() -> dict[str, EntityDef]:
    seen: dict[str, EntityDef] = {}
    todo = list(ENTITIES.values())
    while todo:
        edef = todo.pop()
        if edef.name not in seen:
            seen[edef.name] = edef
            todo += [*edef.linked.values(), *edef.details.values()]
    return seen


def _answer(description: str, schema: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}, "text/json": {"schema": schema}}
    return out


def _errors() -> dict:
    return {"401": {"$ref": "#/components/responses/NotLoggedIn"}, "500": {"$ref": "#/components/responses/Error"}}


def _paths(edef: EntityDef) -> dict:
    name = edef.name
    one = _answer("The record.", _ref(name))
    query = [{"$ref": f"#/components/parameters/{p}"} for p in ("select", "filter", "expand", "custom")]
    body = {"content": {"application/json": {"schema": _ref(name)}}, "required": True, "x-bodyName": "entity"}
    paths: dict[str, Any] = {
        f"/{name}": {
            "get": {"tags": [name], "operationId": f"{name}_GetList", "summary": "Retrieves records.",
                    "parameters": [*query, {"$ref": "#/components/parameters/skip"},
                                   {"$ref": "#/components/parameters/top"}],
                    "responses": {"200": _answer("The records.", {"type": "array", "items": _ref(name)}),
                                  **_errors()}},
            "put": {"tags": [name], "operationId": f"{name}_PutEntity", "summary": "Creates or updates a record.",
                    "parameters": query, "requestBody": body,
                    "responses": {"200": one, "412": _answer("If-Match / If-None-Match failed."),
                                  "422": _answer("The record with field errors.", _ref(name)), **_errors()}},
        },
        f"/{name}/$adHocSchema": {
            "get": {"tags": [name], "operationId": f"{name}_GetAdHocSchema",
                    "summary": "Retrieves the schema of custom fields.", "responses": {"200": one, **_errors()}}},
        f"/{name}/{{id}}": {
            "get": {"tags": [name], "operationId": f"{name}_GetById", "summary": "Retrieves a record by id.",
                    "parameters": [{"$ref": "#/components/parameters/id"}, *query],
                    "responses": {"200": one, **_errors()}},
            "delete": {"tags": [name], "operationId": f"{name}_DeleteById", "summary": "Deletes a record by id.",
                       "parameters": [{"$ref": "#/components/parameters/id"}],
                       "responses": {"204": _answer("Deleted."), **_errors()}}},
    }
    if edef.keys:
        paths[f"/{name}/{{ids}}"] = {
            "get": {"tags": [name], "operationId": f"{name}_GetByKeys", "summary": "Retrieves a record by its keys.",
                    "parameters": [{"$ref": "#/components/parameters/ids"}, *query],
                    "responses": {"200": one, **_errors()}},
            "delete": {"tags": [name], "operationId": f"{name}_DeleteByKeys", "summary": "Deletes a record by keys.",
                       "parameters": [{"$ref": "#/components/parameters/ids"}],
                       "responses": {"204": _answer("Deleted."), **_errors()}}}
    for action in edef.actions:
        paths[f"/{name}/{action}"] = {"post": {
            "tags": [name], "operationId": f"{name}_InvokeAction_{action}", "summary": "Performs an action.",
            "requestBody": {"content": {"application/json": {"schema": _ref(action)}}, "required": True,
                            "x-bodyName": "invocation"},
            "responses": {"202": _answer("Started; poll the Location."), "204": _answer("Done."), **_errors()}}}
    return paths


def openapi_document(version: str, site: str) -> dict:
    schemas: dict[str, Any] = {
        "Entity": {"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"}, "rowNumber": {"type": "integer", "format": "int64"},
            "note": _ref("StringValue"), "error": {"type": "string"},
            "custom": {"type": "object", "additionalProperties": {"type": "object"}},
            "files": {"type": "array", "items": {"type": "object"}}}},
        "HttpError": {"type": "object", "properties": {k: {"type": "string"} for k in
                                                       ("message", "exceptionMessage", "exceptionType", "stackTrace")}},
    }
    for value_name, value_schema in VALUE_TYPES.values():
        schemas[value_name] = {"type": "object", "properties": {"value": value_schema, "error": {"type": "string"}}}
    for name, edef in sorted(_all_types().items()):
        schemas[name] = _entity_schema(edef)
    paths: dict[str, Any] = {}
    for edef in ENTITIES.values():
        paths.update(_paths(edef))
        for action in edef.actions:
            schemas[action] = {"required": ["entity"], "type": "object",
                               "properties": {"entity": _ref(edef.name), "parameters": {"type": "object"}}}
    text = {"type": "string"}
    parameters = {
        "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
        "ids": {"name": "ids", "in": "path", "required": True, "schema": text,
                "description": "The values of the key fields, slash-delimited."},
        **{p: {"name": f"${p}", "in": "query", "schema": text} for p in ("select", "filter", "expand", "custom")},
        "skip": {"name": "$skip", "in": "query", "schema": {"type": "integer"}},
        "top": {"name": "$top", "in": "query", "schema": {"type": "integer"}},
    }
    error = _answer("An error.", _ref("HttpError"))
    return {"openapi": "3.0.1", "info": {"title": f"Default/{version}", "version": "4"},
            "servers": [{"url": f"{site}/entity/Default/{version}"}], "paths": paths,
            "components": {"schemas": schemas, "parameters": parameters,
                           "responses": {"NotLoggedIn": _answer("The user is not logged in.", _ref("HttpError")),
                                         "Error": error}},
            "tags": [{"name": name} for name in ENTITIES]}


def ad_hoc_schema(edef: EntityDef, base: str) -> dict:
    """GET /{Entity}/$adHocSchema: a template of the entity (every contract field empty) whose
    ``custom`` lists the fields outside the contract; this tenant has no customizations."""
    out: dict[str, Any] = {"id": None, "rowNumber": 1, "note": {}}
    out.update({name: {} for name in sorted(edef.fields)})
    out["custom"] = {}
    out["_links"] = {"self": f"{base}/{edef.name}/$adHocSchema"}
    return out
