"""JSON Schemas derived from the types the Lifecycle API's routes build their bodies and
answers with, so that one definition both documents a route and checks what it receives.

A route declares a type (a ``TypedDict``, a dataclass, ``list[...]``, ``X | None``) or a plain
JSON schema (``racetrack_core.lifecycle.openapi.schemas``). pydantic derives the schema of a
type; a class's docstring becomes its description and each key's docstring (the string under
it) the key's. Answers are closed (``additionalProperties: false``), so that an answer carrying
a field its type does not name (a secret, say) breaks its schema and the fuzzing test fails;
a body is closed only when its type says so (``extra="forbid"``), as routes that refuse unknown
fields do.

In the OpenAPI document each named type is one component (``#/components/schemas/Name``);
for validating a request, :func:`standalone` gives a self-contained schema (``$defs``), read
with ``pattern`` as ECMA-262, as the document's readers (and schemathesis) read it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, get_type_hints

import jsonschema
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from racetrack_core.schema_validator import ManifestValidator

#: A schema's own sentences for its rules (``{"pattern": "is not an e-mail address; ..."}``),
#: said after the field's name instead of the general one ("must match the pattern ...").
#: An OpenAPI extension keyword: other readers of the document ignore it.
REFUSALS = "x-refusals"
COMPONENTS = "#/components/schemas/"
DEFS = "#/$defs/"


class _Schemas(GenerateJsonSchema):
    """pydantic's schemas without a title on every key (the key names itself)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class _ClosedSchemas(_Schemas):
    """Answers: every object names all its keys."""

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        result = super().typed_dict_schema(schema)
        result["additionalProperties"] = False
        return result

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        result = super().dataclass_schema(schema)
        if "properties" in result:
            result["additionalProperties"] = False
        return result


def _derive(declared: Any, ref: str, closed: bool) -> dict[str, Any]:
    """The JSON schema of ``declared`` (a type, a mapping, or None for ``null``)."""
    if declared is None:
        return {"type": "null"}
    if isinstance(declared, Mapping):
        copy: dict[str, Any] = json.loads(json.dumps(declared))  # the caller may change it
        return copy
    generator = _ClosedSchemas if closed else _Schemas
    schema = TypeAdapter(declared).json_schema(
        ref_template=ref + "{model}", schema_generator=generator
    )
    return dict(schema)


def standalone(declared: Any) -> Mapping[str, Any]:
    """The self-contained JSON schema of a request body, for a validator (not to be changed:
    a type's schema is derived once)."""
    if isinstance(declared, Mapping):
        return declared
    return _standalone(declared)


@functools.lru_cache(maxsize=256)
def _standalone(declared: Any) -> Mapping[str, Any]:
    return _derive(declared, DEFS, closed=False)


class Components:
    """The named schemas that the operations of one OpenAPI document refer to."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def referenced(self, declared: Any, *, closed: bool = False) -> dict[str, Any]:
        """The schema of ``declared`` for an operation; named types become components."""
        schema = _derive(declared, COMPONENTS, closed)
        for name, definition in schema.pop("$defs", {}).items():
            self._add(name, definition)
        name = getattr(declared, "__name__", None)
        if isinstance(declared, type) and name and schema.get("type") == "object":
            self._add(name, schema)
            return {"$ref": COMPONENTS + name}
        return schema

    def query_parameters(self, declared: type) -> dict[str, Any]:
        """Each key of the TypedDict ``declared`` as a query (or path) parameter's schema."""
        schema = _derive(declared, COMPONENTS, closed=False)
        for name, definition in schema.pop("$defs", {}).items():
            self._add(name, definition)
        properties: dict[str, Any] = schema.get("properties", {})
        assert set(properties) == set(get_type_hints(declared)), declared
        return properties

    def _add(self, name: str, schema: dict[str, Any]) -> None:
        known = self.schemas.setdefault(name, schema)
        if known != schema:
            raise ValueError(f"two different types are named {name} in the Lifecycle API")


def problem(schema: Mapping[str, Any], data: Any) -> str | None:
    """The first thing wrong with ``data`` under ``schema``, as a sentence naming the field,
    or None. The sentence never repeats the value sent (it may be a password or a secret)."""
    error = jsonschema.exceptions.best_match(ManifestValidator(schema).iter_errors(data))
    if error is None:
        return None
    path = _dotted(error.absolute_path)
    field = f"field '{path}'" if path else "the request body"
    rule, limit = error.validator, error.validator_value
    if rule == "required" and isinstance(error.instance, dict):
        missing = [name for name in limit if name not in error.instance]
        return f"field '{_dotted([*error.absolute_path, missing[0]])}' is required"
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        where = f" in {field}" if path else ""
        return f"unknown field '{extra[0]}'{where}; expected: {', '.join(known) or 'none'}"
    own = error.schema.get(REFUSALS, {}) if isinstance(error.schema, Mapping) else {}
    return f"{field} {own.get(str(rule)) or _rule_sentence(str(rule), limit, error.schema)}"


def _dotted(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _kinds(schema: Mapping[str, Any]) -> list[str]:
    """What a schema accepts, in words (its types, or the types of its alternatives)."""
    if "enum" in schema:
        return ["one of " + ", ".join(json.dumps(value) for value in schema["enum"])]
    if "$ref" in schema:
        return [schema["$ref"].rsplit("/", 1)[-1]]
    kinds = schema.get("type")
    if isinstance(kinds, str):
        return [_TYPE_WORDS.get(kinds, kinds)]
    if isinstance(kinds, list):
        return [_TYPE_WORDS.get(str(kind), str(kind)) for kind in kinds]
    return [kind for option in schema.get("anyOf", []) for kind in _kinds(option)]


def _rule_sentence(rule: str, limit: Any, schema: Mapping[str, Any]) -> str:
    if rule in ("type", "anyOf", "oneOf"):
        return "must be " + (" or ".join(_kinds(schema)) or "of another form")
    if rule == "enum":
        return "must be one of " + ", ".join(json.dumps(value) for value in limit)
    if rule == "const":
        return f"must be {json.dumps(limit)}"
    words = {
        "minLength": f"must be at least {limit} characters long",
        "maxLength": f"must be at most {limit} characters long",
        "minimum": f"must be at least {limit}",
        "maximum": f"must be at most {limit}",
        "exclusiveMinimum": f"must be more than {limit}",
        "exclusiveMaximum": f"must be less than {limit}",
        "minItems": f"must hold at least {limit} items",
        "maxItems": f"must hold at most {limit} items",
        "minProperties": f"must hold at least {limit} entries",
        "maxProperties": f"must hold at most {limit} entries",
        "pattern": f"must match the pattern {limit}",
    }
    return words.get(rule, f"does not fit its schema ({rule})")
