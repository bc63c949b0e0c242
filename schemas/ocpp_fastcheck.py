"""A compiled yes/no check for the subset of JSON Schema the OCA OCPP schemas use.

Why: ``jsonschema`` walks a schema through generic machinery (a validator object per
level, reference lookups), about 100-300 microseconds per TransactionEvent, which would
cap the worker at a few thousand events per second. The OCA schemas use a small, fixed
set of keywords, so each schema is compiled once into nested Python closures that answer
"valid?" several times faster.

The check only ever *confirms* validity: a payload it refuses goes to ``jsonschema``,
which remains the authority and writes the reason (and if ``jsonschema`` accepts it, it is
accepted). A schema using any keyword outside the supported set is not compiled (None),
and ``jsonschema`` validates it alone. ``tests/unit/test_ocpp_fastcheck.py`` compares both
on valid and mutated payloads.

Semantics follow ``jsonschema`` 4.x for drafts 4 and 6 without a format checker:
``format`` is an annotation (not asserted); ``integer`` excludes floats in draft 4 and
accepts integral floats from draft 6; booleans are neither integers nor numbers;
``Decimal`` is a number (not an integer); keywords apply only to their instance type.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

Check = Callable[[Any], bool]

#: Keywords that carry no assertion here.
_ANNOTATIONS = frozenset({"description", "javaType", "comment", "title", "$id", "$schema", "default",
                          "format", "definitions"})
_SUPPORTED = frozenset({"type", "$ref", "properties", "required", "additionalProperties", "maxLength",
                        "enum", "items", "additionalItems", "minItems", "maxItems", "minimum",
                        "maximum", "multipleOf"}) | _ANNOTATIONS


class Unsupported(Exception):
    """The schema uses something this compiler does not implement."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, Decimal)) and not isinstance(x, bool)


def _type_check(name: str, draft4: bool) -> Check:
    if name == "object":
        return lambda x: isinstance(x, dict)
    if name == "array":
        return lambda x: isinstance(x, list)
    if name == "string":
        return lambda x: isinstance(x, str)
    if name == "boolean":
        return lambda x: isinstance(x, bool)
    if name == "number":
        return _is_number
    if name == "integer":
        if draft4:
            return lambda x: isinstance(x, int) and not isinstance(x, bool)
        return lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (
            isinstance(x, float) and x.is_integer())
    if name == "null":
        return lambda x: x is None
    raise Unsupported(f"type {name!r}")


def compile_schema(schema: dict[str, Any], draft4: bool) -> Check | None:
    """A yes/no check equivalent to ``jsonschema``'s ``is_valid`` for ``schema``, or None."""
    definitions = schema.get("definitions", {})
    try:
        return _compile(schema, definitions, draft4, depth=0)
    except Unsupported:
        return None


def _compile(node: Any, definitions: dict[str, Any], draft4: bool, depth: int) -> Check:
    if depth > 50 or not isinstance(node, dict):
        raise Unsupported("schema too deep or not an object")
    unknown = set(node) - _SUPPORTED
    if unknown:
        raise Unsupported(f"keywords {sorted(unknown)}")
    ref = node.get("$ref")
    if ref is not None:
        if not (isinstance(ref, str) and ref.startswith("#/definitions/")):
            raise Unsupported(f"$ref {ref!r}")
        if set(node) - _ANNOTATIONS != {"$ref"}:
            raise Unsupported("$ref with siblings")  # drafts 4-7 ignore them; not used by OCA
        return _compile(definitions[ref.removeprefix("#/definitions/")], definitions, draft4, depth + 1)

    checks: list[Check] = []
    if "type" in node:
        if not isinstance(node["type"], str):
            raise Unsupported("type list")
        checks.append(_type_check(node["type"], draft4))
    if "enum" in node:
        allowed = node["enum"]
        if not all(isinstance(v, str) for v in allowed):
            raise Unsupported("non-string enum")
        allowed_set = frozenset(allowed)
        checks.append(lambda x: isinstance(x, str) and x in allowed_set)
    if "maxLength" in node:
        limit = node["maxLength"]
        checks.append(lambda x: not isinstance(x, str) or len(x) <= limit)
    for key, compare in (("minimum", lambda x, b: x >= b), ("maximum", lambda x, b: x <= b)):
        if key in node:
            bound = node[key]
            checks.append(lambda x, b=bound, c=compare: not _is_number(x) or c(x, b))
    if "multipleOf" in node:
        raise Unsupported("multipleOf")  # float semantics of jsonschema: leave it to jsonschema
    if any(k in node for k in ("items", "minItems", "maxItems", "additionalItems")):
        checks.append(_array_check(node, definitions, draft4, depth))
    if any(k in node for k in ("properties", "required", "additionalProperties")):
        checks.append(_object_check(node, definitions, draft4, depth))
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)
    return lambda x: all(check(x) for check in frozen)


def _array_check(node: dict[str, Any], definitions: dict[str, Any], draft4: bool, depth: int) -> Check:
    items = node.get("items")
    if items is not None and not isinstance(items, dict):
        raise Unsupported("tuple items")  # additionalItems only matters with tuple items
    item_check = _compile(items, definitions, draft4, depth + 1) if items is not None else None
    low = node.get("minItems")
    high = node.get("maxItems")

    def check(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        if low is not None and len(x) < low:
            return False
        if high is not None and len(x) > high:
            return False
        return item_check is None or all(item_check(item) for item in x)

    return check


def _object_check(node: dict[str, Any], definitions: dict[str, Any], draft4: bool, depth: int) -> Check:
    properties = {k: _compile(v, definitions, draft4, depth + 1) for k, v in node.get("properties", {}).items()}
    required = tuple(node.get("required", ()))
    additional = node.get("additionalProperties", True)
    if additional not in (True, False):
        raise Unsupported("additionalProperties schema")
    closed = additional is False

    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        for key in required:
            if key not in x:
                return False
        for key, value in x.items():
            prop = properties.get(key)
            if prop is None:
                if closed:
                    return False
            elif not prop(value):
                return False
        return True

    return check
