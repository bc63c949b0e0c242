"""A compiled yes/no check for the subset of JSON Schema the OCA OCPP schemas use.

Why: ``jsonschema`` walks a schema through generic machinery (a validator object per
level, reference lookups), about 100-300 microseconds per TransactionEvent, which would
cap the worker at a few thousand events per second. The OCA schemas use a small, fixed
set of keywords, so each schema is compiled once into one generated Python function
(``$ref`` inlined, nested ``if`` / ``for`` blocks, like ``fastjsonschema`` does) that answers
"valid?" about 40x faster (a 2.0.1 TransactionEvent: ~2.5 us instead of ~100 us).

The check only ever *confirms* validity: a payload it refuses goes to ``jsonschema``,
which remains the authority and writes the reason (and if ``jsonschema`` accepts it, it is
accepted). A schema using any keyword outside the supported set is not compiled (None),
and ``jsonschema`` validates it alone. ``tests/unit/test_ocpp_fastcheck.py`` compares both
on valid and mutated payloads.

Build mode (:func:`compile_builder`, for the billed CALLs): the same generated checks, with
exact-class type tests (``v.__class__ is str`` ...: a subclass, a bool for an integer or an
integral float is "not sure", never "valid"), and a builder call per model object with the
property values just read, so a payload is checked and its model built in one pass. It
answers None (not sure) for whatever it does not build; the two passes then decide.

Semantics follow ``jsonschema`` 4.x for drafts 4 and 6 without a format checker:
``format`` is an annotation (not asserted); ``integer`` excludes floats in draft 4 and
accepts integral floats from draft 6; booleans are neither integers nor numbers;
``Decimal`` is a number (not an integer); keywords apply only to their instance type.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from schemas.ocpp_base import MISSING

Check = Callable[[Any], bool]

#: Keywords that carry no assertion here.
_ANNOTATIONS = frozenset({"description", "javaType", "comment", "title", "$id", "$schema", "default",
                          "format", "definitions"})
_SUPPORTED = frozenset({"type", "$ref", "properties", "required", "additionalProperties", "maxLength",
                        "enum", "items", "additionalItems", "minItems", "maxItems", "minimum",
                        "maximum", "multipleOf"}) | _ANNOTATIONS


class Unsupported(Exception):
    """The schema uses something this compiler does not implement."""


def compile_schema(schema: dict[str, Any], draft4: bool) -> Check | None:
    """A yes/no check equivalent to ``jsonschema``'s ``is_valid`` for ``schema``, or None.

    The check is generated Python source (one function per schema, every ``$ref`` inlined,
    nested objects and arrays as nested ``if`` / ``for`` blocks that ``return False`` at the
    first violation), compiled once; see :func:`schema_source` to read it.
    """
    try:
        source, constants = _generate(schema, draft4)
    except Unsupported:
        return None
    namespace: dict[str, Any] = dict(constants)
    exec(compile(source, "<ocpp_fastcheck>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["check"]


def schema_source(schema: dict[str, Any], draft4: bool) -> str:
    """The generated source of :func:`compile_schema`'s check (for reading and debugging)."""
    return _generate(schema, draft4)[0]


_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties")
_ARRAY_KEYWORDS = ("items", "minItems", "maxItems", "additionalItems")


class _Generator:
    """Writes the body of ``check(v0)``; every violation is a ``return False``."""

    def __init__(self, definitions: dict[str, Any], draft4: bool,
                 builders: dict[tuple[str, ...], Builder] | None = None) -> None:
        self.definitions = definitions
        self.draft4 = draft4
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {"_Decimal": Decimal, "_MISSING": MISSING,
                                          "_NUMBER_CLASSES": frozenset((int, float, Decimal))}
        self.counter = 0
        #: Build mode (:func:`compile_builder`): exact classes only, and the built values.
        self.builders = builders
        self.strict = builders is not None
        self.fail = "return None" if self.strict else "return False"

    def var(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def fail_if(self, indent: int, condition: str) -> None:
        self.emit(indent, f"if {condition}:")
        self.emit(indent + 1, self.fail)

    def built(self, path: tuple[str, ...]) -> bool:
        """Whether the node at ``path`` yields a built value (build mode): an object with a
        builder, or an array whose items have one."""
        return self.builders is not None and (path in self.builders or path + ("[]",) in self.builders)

    # --- nodes ---------------------------------------------------------------------------

    def node(self, node: Any, v: str, indent: int, depth: int, path: tuple[str, ...] = (),
             target: str | None = None) -> None:
        """The checks of ``node`` on the value in variable ``v``; in build mode, a node that
        yields a built value (:meth:`built`) assigns it to ``target``."""
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
            target_node = self.definitions[ref.removeprefix("#/definitions/")]
            self.node(target_node, v, indent, depth + 1, path, target)
            return
        if "multipleOf" in node:
            raise Unsupported("multipleOf")  # float semantics of jsonschema: leave it to jsonschema
        kind = node.get("type")
        if kind is not None and not isinstance(kind, str):
            raise Unsupported("type list")
        if self.built(path) and kind != ("object" if path in self.builders else "array"):  # type: ignore[operator]
            raise Unsupported(f"built node {path} of type {kind!r}")
        if kind is not None:
            self.fail_if(indent, f"not ({self.type_test(kind, v)})")
        # keywords apply only to their instance type: after a type check, only that type's
        # keywords can fail; without one, each group is guarded by its own type test.
        self.enum(node, kind, v, indent)
        if "maxLength" in node and kind in (None, "string"):
            limit = node["maxLength"]
            guard = "" if kind == "string" else f"isinstance({v}, str) and "
            self.fail_if(indent, f"{guard}len({v}) > {limit!r}")
        for key, op in (("minimum", "<"), ("maximum", ">")):
            if key in node and kind in (None, "number", "integer"):
                bound = self.constant(node[key])
                guard = "" if kind in ("number", "integer") else f"({self.type_test('number', v)}) and "
                self.fail_if(indent, f"{guard}{v} {op} {bound}")
        if (any(k in node for k in _ARRAY_KEYWORDS) or self.built(path)) and kind in (None, "array"):
            self.array(node, v, indent, depth, kind == "array", path, target)
        if (any(k in node for k in _OBJECT_KEYWORDS) or self.built(path)) and kind in (None, "object"):
            self.object(node, v, indent, depth, kind == "object", path, target)

    def type_test(self, name: str, v: str) -> str:
        if self.strict:  # build mode: the exact classes the fast constructors take, nothing else
            exact = _EXACT_TYPE_TESTS.get(name)
            if exact is None:
                raise Unsupported(f"type {name!r}")
            return exact.format(v=v)
        if name == "object":
            return f"isinstance({v}, dict)"
        if name == "array":
            return f"isinstance({v}, list)"
        if name == "string":
            return f"isinstance({v}, str)"
        if name == "boolean":
            return f"isinstance({v}, bool)"
        if name == "null":
            return f"{v} is None"
        exact_int = f"{v}.__class__ is int or (isinstance({v}, int) and not isinstance({v}, bool))"
        if name == "number":
            return f"{exact_int} or isinstance({v}, (float, _Decimal))"
        if name == "integer":
            if self.draft4:
                return exact_int
            return f"{exact_int} or (isinstance({v}, float) and {v}.is_integer())"
        raise Unsupported(f"type {name!r}")

    def enum(self, node: dict[str, Any], kind: str | None, v: str, indent: int) -> None:
        if "enum" not in node:
            return
        allowed = node["enum"]
        if not all(isinstance(value, str) for value in allowed):
            raise Unsupported("non-string enum")
        allowed_set = self.constant(frozenset(allowed))
        if kind == "string":
            self.fail_if(indent, f"{v} not in {allowed_set}")
        elif kind is None:
            self.fail_if(indent, f"not (isinstance({v}, str) and {v} in {allowed_set})")
        else:  # an instance of another type is never one of these strings
            self.emit(indent, self.fail)

    def array(self, node: dict[str, Any], v: str, indent: int, depth: int, guarded: bool,
              path: tuple[str, ...] = (), target: str | None = None) -> None:
        items = node.get("items")
        if items is not None and not isinstance(items, dict):
            raise Unsupported("tuple items")  # additionalItems only matters with tuple items
        built = self.built(path)
        if built and (not guarded or items is None):
            raise Unsupported(f"built array {path} without a type or items")
        if not guarded:
            self.emit(indent, f"if isinstance({v}, list):")
            indent += 1
            self.emit(indent, "pass")
        low, high = node.get("minItems"), node.get("maxItems")
        if low is not None:
            self.fail_if(indent, f"len({v}) < {low!r}")
        if high is not None:
            self.fail_if(indent, f"len({v}) > {high!r}")
        if items is not None:
            item = self.var()
            if built:  # the list of the built items
                result = self.var("r")
                self.emit(indent, f"{target} = []")
                self.emit(indent, f"for {item} in {v}:")
                self.node(items, item, indent + 1, depth + 1, path + ("[]",), result)
                self.emit(indent + 1, f"{target}.append({result})")
                return
            start = len(self.lines)
            self.emit(indent, f"for {item} in {v}:")
            body = len(self.lines)
            self.node(items, item, indent + 1, depth + 1, path + ("[]",))
            if len(self.lines) == body:  # an item schema without assertions: no loop
                del self.lines[start:]

    def object(self, node: dict[str, Any], v: str, indent: int, depth: int, guarded: bool,
               path: tuple[str, ...] = (), target: str | None = None) -> None:
        properties = node.get("properties", {})
        required = node.get("required", ())
        additional = node.get("additionalProperties", True)
        if additional not in (True, False):
            raise Unsupported("additionalProperties schema")
        if not isinstance(properties, dict) or not all(isinstance(k, str) for k in list(properties) + list(required)):
            raise Unsupported("properties / required shape")
        builder = self.builders.get(path) if self.builders is not None else None
        if builder is not None:
            # A model is built from the properties its builder names; it gets the payload
            # object too (the keys it carries), and no key outside the schema's properties
            # (so none of pydantic's Python field names, populate_by_name).
            if additional is not False or not guarded or not set(builder.properties) <= set(properties):
                raise Unsupported(f"builder at {path} for this object")
        if not guarded:
            self.emit(indent, f"if isinstance({v}, dict):")
            indent += 1
            self.emit(indent, "pass")
        for key in required:
            if self.strict and key in properties:
                continue  # build mode: reading it below raises KeyError when it is absent
            self.fail_if(indent, f"{key!r} not in {v}")
        if additional is False:
            allowed = self.constant(frozenset(properties))
            self.fail_if(indent, f"not ({v}.keys() <= {allowed})")
        arguments: dict[str, str] = {}
        for key, sub in properties.items():
            value = self.var()
            sub_path = path + (key,)
            captured = builder is not None and key in builder.properties
            result = self.var("r") if self.built(sub_path) else None
            start = len(self.lines)
            if key in required:
                self.emit(indent, f"{value} = {v}[{key!r}]")
                body_indent = indent
            elif captured:  # absent: _MISSING (the builder tells absent from null)
                self.emit(indent, f"if {key!r} not in {v}:")
                self.emit(indent + 1, f"{value} = _MISSING")
                if result is not None:
                    self.emit(indent + 1, f"{result} = _MISSING")
                self.emit(indent, "else:")
                self.emit(indent + 1, f"{value} = {v}[{key!r}]")
                body_indent = indent + 1
            else:
                self.emit(indent, f"if {key!r} in {v}:")
                self.emit(indent + 1, f"{value} = {v}[{key!r}]")
                body_indent = indent + 1
            body = len(self.lines)
            self.node(sub, value, body_indent, depth + 1, sub_path, result)
            if len(self.lines) == body and not captured and result is None:  # a property schema without assertions
                del self.lines[start:]
            if captured:
                arguments[key] = result if result is not None else value
            elif result is not None:
                raise Unsupported(f"built value at {sub_path} that no builder takes")
        if builder is not None:
            function = self.constant(builder.build)
            given = ", ".join(arguments[key] for key in builder.properties)
            self.emit(indent, f"{target} = {function}({v}, {given})")


#: Build mode's type tests: the exact JSON classes (``json`` / pydantic-core give exactly
#: these); a subclass, a bool for an integer, an integral float: not built (the detailed path).
#: (``type(v)``: CPython runs the one-argument call of the builtin without a call, cheaper
#: than the ``__class__`` attribute.) A build function reads a required property directly:
#: a missing key raises KeyError, which means "not built" like any exception.
_EXACT_TYPE_TESTS = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
    "integer": "type({v}) is int",
    "number": "type({v}) in _NUMBER_CLASSES",
}


class Builder(NamedTuple):
    """How :func:`compile_builder` builds the value of one object node: ``build(obj, *values)``
    gets the payload object and, in the order of ``properties``, each property's value (the
    built one for a node with its own builder, a list of them for an array of such nodes)
    or :data:`MISSING` when absent. It returns the built value or raises (any exception:
    the payload is not built here)."""

    properties: tuple[str, ...]
    build: Callable[..., Any]


def compile_builder(schema: dict[str, Any], draft4: bool,
                    builders: dict[tuple[str, ...], Builder]) -> Callable[[Any], Any] | None:
    """One generated function that checks ``schema`` and builds the model in the same pass:
    ``build(payload)`` returns the value of the root's builder, or None when the payload
    fails the schema or is not of the exact JSON classes (then the detailed path decides);
    the builders may raise for payloads they do not vouch for. ``builders`` maps an object
    node's path (property names, ``"[]"`` for an array's items) to its :class:`Builder`.
    None when the schema uses something the compiler does not implement, or a builder does
    not fit its node (an object without ``additionalProperties: false``, ...)."""
    if () not in builders:
        return None
    try:
        source, constants = _generate(schema, draft4, builders)
    except Unsupported:
        return None
    namespace: dict[str, Any] = dict(constants)
    exec(compile(source, "<ocpp_fastcheck build>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["check"]


def _generate(schema: dict[str, Any], draft4: bool,
              builders: dict[tuple[str, ...], Builder] | None = None) -> tuple[str, dict[str, Any]]:
    generator = _Generator(schema.get("definitions", {}), draft4, builders)
    if builders is None:
        generator.node(schema, "v0", 1, 0)
        lines = ["def check(v0):", *generator.lines, "    return True"]
    else:
        generator.node(schema, "v0", 1, 0, (), "r0")
        lines = ["def check(v0):", *generator.lines, "    return r0"]
    return "\n".join(lines) + "\n", generator.constants
