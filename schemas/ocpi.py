"""OCPI 2.2.1 Tariff and CDR objects (mod_tariffs, mod_cdrs, types, mod_locations).

Every field of the spec is here, with the spec's names. Money, energy, power and current
are ``Decimal`` (OCPI ``number``); timestamps are aware UTC datetimes (OCPI ``DateTime``:
"All timestamps SHALL be in UTC. The absence of the timezone designator implies a UTC
timestamp", types.asciidoc).

JSON in and out is exact:

- ``Model.model_validate_json(text)`` parses numbers straight to ``Decimal`` (the default
  pydantic JSON parser goes through binary floats, which would turn 0.1 + 0.2 into
  0.30000000000000004-style noise for long numbers);
- ``Model.model_dump_json()`` writes OCPI JSON: Decimals as JSON *numbers* with their exact
  text (``2.50`` stays ``2.50``, never a string, never a float), timestamps as
  ``2015-06-29T20:39:09Z``, fields that are None left out (OCPI: "Fields that are not
  specified may be considered as null values").
- ``ocpi_dumps`` / ``ocpi_loads`` do the same for any structure (a list of CDRs, a dict
  holding models, Decimals, datetimes).

Note: ``model_dump(mode="json")`` is pydantic's own JSON-compatible mode and renders
Decimals as strings; use ``model_dump_json`` / ``ocpi_dumps`` for the OCPI wire format.

Speed (a CDR is written for every session): the models of this module are written by a
writer generated once per class (:func:`_model_writer`) that reads the instance directly;
its text is by construction (and by tests/unit/test_ocpi_json_writer.py, against the
previous writer kept in tests/unit/ocpi_json_reference.py) the text of
``model_dump(mode="python", exclude_none=True)`` written by :func:`_encode`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from itertools import chain
from types import UnionType
from typing import Annotated, Any, Callable, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WrapSerializer
from pydantic.fields import FieldInfo

__all__ = [
    "AuthMethod",
    "Cdr",
    "CdrDimension",
    "CdrDimensionType",
    "CdrLocation",
    "CdrToken",
    "ChargingPeriod",
    "ConnectorFormat",
    "ConnectorType",
    "DayOfWeek",
    "DisplayText",
    "EnergyMix",
    "EnergySource",
    "EnergySourceCategory",
    "EnvironmentalImpact",
    "EnvironmentalImpactCategory",
    "GeoLocation",
    "OcpiDateTime",
    "PowerType",
    "Price",
    "PriceComponent",
    "ReservationRestrictionType",
    "SignedData",
    "SignedValue",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "TariffType",
    "TokenType",
    "format_ocpi_datetime",
    "ocpi_dumps",
    "ocpi_loads",
]


# --------------------------------------------------------------------------------------
# Exact JSON
# --------------------------------------------------------------------------------------


def format_ocpi_datetime(value: datetime) -> str:
    """OCPI DateTime text (types.asciidoc): UTC, ``Z`` designator, fraction only if any."""
    if value.tzinfo is timezone.utc and value.year >= 1000:
        # The same text, faster (strftime's %Y does not pad years before 1000: those take
        # the general path).
        return _utc_text(value)
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
#: proleptic Gregorian ordinal -> '"YYYY-MM-DDT' (bounded: emptied when full)
_DAY_TEXTS: dict[int, str] = {}


def _utc_json(value: datetime) -> str:
    """The JSON string (quoted) of ``format_ocpi_datetime`` for a datetime whose tzinfo is
    ``timezone.utc`` and whose year is >= 1000: ``value.isoformat()`` is
    "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00" there, written as
    "YYYY-MM-DDTHH:MM:SS[.fraction without trailing zeros]Z". Built from the fields
    (isoformat formats through printf: about twice the work), the date part remembered
    per day."""
    day = value.toordinal()
    head = _DAY_TEXTS.get(day)
    if head is None:
        if len(_DAY_TEXTS) >= 4096:
            _DAY_TEXTS.clear()
        head = _DAY_TEXTS[day] = '"' + value.isoformat()[:11]
    two = _TWO_DIGITS
    text = head + two[value.hour] + ":" + two[value.minute] + ":" + two[value.second]
    microsecond = value.microsecond
    if microsecond:
        return text + ("." + str(1_000_000 + microsecond)[1:]).rstrip("0") + 'Z"'
    return text + 'Z"'


def _utc_text(value: datetime) -> str:
    """:func:`_utc_json` without the quotes."""
    return _utc_json(value)[1:-1]


def _decimal_text(value: Decimal) -> str:
    """The exact text of a Decimal as a JSON number (no exponent, no quotes).

    ``str(value)`` of a finite Decimal is that text, and faster, whenever it has no
    exponent (General Decimal Arithmetic to-scientific-string: plain notation exactly
    when the exponent is <= 0 and the adjusted exponent >= -6); else ``format(value,
    "f")``. A negative zero without decimals is written ``0`` (JSON has no -0 integer)."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    text = str(value)
    if "E" in text:
        text = format(value, "f")
    return "0" if text == "-0" else text


def _encode(value: Any, out: list[str], indent: str | None, level: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Enum):
        out.append(json.dumps(value.value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(_decimal_text(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("float in OCPI output: money and energy must be Decimal")
    elif isinstance(value, datetime):
        out.append('"' + format_ocpi_datetime(value) + '"')
    elif isinstance(value, date):
        out.append('"' + value.isoformat() + '"')
    elif isinstance(value, BaseModel):
        _encode(value.model_dump(mode="python", exclude_none=True), out, indent, level)
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        sep, inner, outer = _separators(indent, level)
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(sep)
            first = False
            out.append(inner)
            out.append(json.dumps(str(key.value if isinstance(key, Enum) else key)))
            out.append(": " if indent is not None else ":")
            _encode(item, out, indent, level + 1)
        out.append(outer + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        sep, inner, outer = _separators(indent, level)
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(sep)
            out.append(inner)
            _encode(item, out, indent, level + 1)
        out.append(outer + "]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as OCPI JSON")


#: json.dumps(s, ensure_ascii=False) / json.dumps(s) of a str, without building an encoder.
_quote = json.encoder.encode_basestring
_quote_ascii = json.encoder.encode_basestring_ascii

_UTC = timezone.utc

#: Field plans of the OCPI model classes (see :func:`_field_plan`); None: no plan, the
#: class is written from its ``model_dump``.
_FIELD_PLANS: dict[type, dict[str, str] | None] = {}

#: Per enum class: member -> its JSON text (``json.dumps(member.value)``), filled lazily.
_ENUM_TEXTS: dict[type, dict[Any, str]] = {}


def _field_plan(cls: type) -> dict[str, str] | None:
    """Field name -> ``"name":`` for the fields of an OCPI model class, or None.

    ``model_dump(mode="python", exclude_none=True)`` of such a model is its ``__dict__``
    in that dict's order, without the entries that are not fields and those that are None
    (pydantic-core walks the instance dict); :func:`_encode_model` writes the same from
    the plan. Only for the classes of this module, whose python-mode dump is exactly that
    (no computed fields, no python-mode serializers, no excluded fields, no aliases, no
    extra fields); any other model class gets None (written via its ``model_dump``)."""
    plan = _FIELD_PLANS.get(cls, False)
    if plan is not False:
        return plan
    plan = None
    if (
        issubclass(cls, OcpiModel)
        and cls.__module__ == __name__
        and globals().get(cls.__name__) is cls
        and not cls.model_computed_fields
        and not cls.__pydantic_decorators__.field_serializers
        and not cls.__pydantic_decorators__.model_serializers
        and not cls.model_config.get("serialize_by_alias")
        and cls.model_config.get("extra") != "allow"
        and all(
            not field.exclude
            and not _has_python_mode_serializer(field.metadata)
            and not _has_python_mode_serializer([field.annotation])
            for field in cls.model_fields.values()
        )
    ):
        plan = {name: _quote_ascii(name) + ":" for name in cls.model_fields}
    _FIELD_PLANS[cls] = plan
    return plan


def _has_python_mode_serializer(annotations: list[Any]) -> bool:
    """Whether a type annotation (or field metadata) carries a serializer that applies
    to python-mode dumps (one for JSON only, like OcpiDateTime's, does not)."""
    for item in annotations:
        if isinstance(item, (PlainSerializer, WrapSerializer)):
            if item.when_used not in ("json", "json-unless-none"):
                return True
        elif isinstance(item, FieldInfo):
            if item.exclude or _has_python_mode_serializer(item.metadata):
                return True
        elif get_origin(item) is Annotated:
            if _has_python_mode_serializer([item.__origin__, *item.__metadata__]):
                return True
        elif _has_python_mode_serializer(list(get_args(item))):
            return True
    return False


def _enum_text(value: Enum) -> str:
    """``json.dumps(value.value)``, remembered per member."""
    texts = _ENUM_TEXTS.get(type(value))
    if texts is None:
        texts = _ENUM_TEXTS[type(value)] = {}
    text = texts.get(value)
    if text is None:
        text = texts[value] = json.dumps(value.value)
    return text


def _encode_model(model: BaseModel, plan: dict[str, str], out: list[str]) -> None:
    """An OCPI model as JSON without its None fields, from its field plan: the text
    ``_encode(model.model_dump(mode="python", exclude_none=True))`` gives, byte for byte,
    without building the dump. The common values (str, Decimal, OCPI models, lists of
    them, enums) are written inline; everything else goes through :func:`_encode_compact`."""
    append = out.append
    sep = "{"
    for name, value in model.__dict__.items():
        if value is None:
            continue
        key = plan.get(name)
        if key is None:  # not a field: model_dump leaves it out too
            continue
        t = type(value)
        if t is str:
            append(sep + key + _quote(value))
        elif t is Decimal:
            append(sep + key + _decimal_text(value))
        else:
            append(sep + key)
            texts = _ENUM_TEXTS.get(t)
            if texts is not None and value in texts:
                append(texts[value])
            elif t is list and value:
                item_sep = "["
                for item in value:
                    append(item_sep)
                    item_sep = ","
                    item_plan = _FIELD_PLANS.get(type(item))
                    if item_plan is not None:
                        _encode_model(item, item_plan, out)
                    else:
                        _encode_compact(item, out)
                append("]")
            else:
                sub_plan = _FIELD_PLANS.get(t)
                if sub_plan is not None:
                    _encode_model(value, sub_plan, out)
                else:
                    _encode_compact(value, out)
        sep = ","
    append("{}" if sep == "{" else "}")


#: Compiled writers of the OCPI model classes (see :func:`_model_writer`); None: no plan.
_WRITERS: dict[type, Callable[[Any, list[str]], None] | None] = {}


def _field_kind(annotation: Any) -> tuple[str, Any]:
    """What a field usually holds, to try first: ("str"|"decimal"|"datetime"|"int", None),
    ("enum", class), ("model", class), ("models", item class) or ("any", None). Only a
    guess: the writer checks the value's exact type and writes anything else generically."""
    if get_origin(annotation) in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) != 1:
            return "any", None
        annotation = args[0]
    if get_origin(annotation) is Annotated:
        annotation = annotation.__origin__
    if get_origin(annotation) is list:
        (item,) = get_args(annotation) or (Any,)
        if isinstance(item, type) and _field_plan(item) is not None:
            return "models", item
        return "any", None
    simple = {str: "str", Decimal: "decimal", datetime: "datetime", int: "int"}
    if annotation in simple:
        return simple[annotation], None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "enum", annotation
    if isinstance(annotation, type) and _field_plan(annotation) is not None:
        return "model", annotation
    return "any", None


def _is_leaf(cls: type) -> bool:
    """An OCPI model class none of whose fields usually holds a model (written inline)."""
    return all(_field_kind(field.annotation)[0] not in ("model", "models") for field in cls.model_fields.values())


def _model_lines(cls: type, var: str, env: dict[str, Any], ids: list[int]) -> list[str]:
    """Python lines writing the model in variable ``var`` (of class ``cls``) to ``out``:
    the fields in declaration order if the instance dict is exactly those fields in that
    order, else :func:`_encode_model` (which follows the dict's order, like pydantic).
    Leaf models held by a field are written inline, other models by their own writer.

    Every field written starts with its key after a comma (``,"name":``, a constant) and
    its value as separate pieces of ``out`` (no string concatenation); the first piece
    written for the model then gets "{" instead of its comma (``OPEN``: comma key -> key
    after "{"), and an instance without any field written is "{}"."""
    n = ids[0] = ids[0] + 1
    plan = _field_plan(cls)
    assert plan is not None
    names = tuple(plan)
    env[f"NAMES{n}"], env[f"PLAN{n}"] = names, plan
    env[f"OPEN{n}"] = {"," + key: "{" + key for key in plan.values()}
    d, first = f"d{n}", f"first{n}"
    lines = [
        f"{d} = {var}.__dict__",
        f"if tuple({d}) != NAMES{n}:",
        f"    encode_model({var}, PLAN{n}, out)",
        "else:",
        f"    {first} = len(out)",
    ]
    if names:
        lines.append(f"    {', '.join(f'v{n}_{k}' for k in range(len(names)))}, = {d}.values()")
    for k, name in enumerate(names):
        kind, arg = _field_kind(cls.model_fields[name].annotation)
        key = f"K{n}_{k}"
        env[key] = "," + plan[name]
        v = f"v{n}_{k}"
        generic = [f"append({key})", f"encode_compact({v}, out)"]
        if kind == "str":
            fast = f"type({v}) is str", [f"append({key})", f"append(quote({v}))"]
        elif kind == "decimal":
            # str() is the format(v, "f") text unless it has an exponent (see _decimal_text)
            fast = f"type({v}) is Decimal and {v}.is_finite()", [
                f"append({key})",
                f"text = str({v})",
                "if 'E' in text:",
                f"    text = format({v}, 'f')",
                "append('0' if text == '-0' else text)"]
        elif kind == "int":
            fast = f"type({v}) is int", [f"append({key})", f"append(str({v}))"]
        elif kind == "datetime":
            # format_ocpi_datetime's fast path
            fast = f"type({v}) is datetime and {v}.tzinfo is UTC and {v}.year >= 1000", [
                f"append({key})", f"append(utc_json({v}))"]
        elif kind == "enum":
            env[f"E{n}_{k}"] = arg
            env[f"T{n}_{k}"] = {member: json.dumps(member.value) for member in arg}
            fast = f"type({v}) is E{n}_{k} and {v} in T{n}_{k}", [f"append({key})", f"append(T{n}_{k}[{v}])"]
        elif kind == "model":
            env[f"M{n}_{k}"] = arg
            if _is_leaf(arg) and arg not in _MEMO_LIMITS:
                write = _model_lines(arg, v, env, ids)
            else:
                env[f"W{n}_{k}"] = None
                env.setdefault("LATE", []).append((f"W{n}_{k}", arg))
                write = [f"(W{n}_{k} or writer_of(M{n}_{k}))({v}, out)"]
            fast = f"type({v}) is M{n}_{k}", [f"append({key})", *write]
        elif kind == "models":
            env[f"M{n}_{k}"] = arg
            if _is_leaf(arg) and arg not in _MEMO_LIMITS:
                write = _model_lines(arg, "item", env, ids)
            else:
                env[f"W{n}_{k}"] = None
                env.setdefault("LATE", []).append((f"W{n}_{k}", arg))
                write = [f"(W{n}_{k} or writer_of(M{n}_{k}))(item, out)"]
            fast = f"type({v}) is list and {v}", [
                f"append({key})",
                "item_sep = '['",
                f"for item in {v}:",
                "    append(item_sep)",
                "    item_sep = ','",
                f"    if type(item) is M{n}_{k}:",
                *("        " + line for line in write),
                "    else:",
                "        encode_compact(item, out)",
                "append(']')",
            ]
        else:
            fast = None
        lines.append(f"    if {v} is not None:")
        if fast is None:
            lines.extend("        " + line for line in generic)
        else:
            lines.append(f"        if {fast[0]}:")
            lines.extend("            " + line for line in fast[1])
            lines.append("        else:")
            lines.extend("            " + line for line in generic)
    lines.extend([
        f"    if len(out) == {first}:",
        "        append('{}')",
        "    else:",
        f"        out[{first}] = OPEN{n}[out[{first}]]",
        "        append('}')",
    ])
    return lines


def _model_writer(cls: type) -> Callable[[Any, list[str]], None] | None:
    """A writer compiled for one OCPI model class: the text of :func:`_encode_model`,
    with the fields unrolled in declaration order and each field's usual type (and the
    leaf models it holds) written inline. It first checks that the instance dict holds
    exactly the fields in that order (as validation, ``model_construct`` and
    ``model_copy`` leave it), else it hands over to :func:`_encode_model`, which follows
    the dict's order like pydantic does; a value of another type than the usual one is
    written by :func:`_encode_compact`. None for classes without a field plan."""
    if cls in _WRITERS:
        return _WRITERS[cls]
    if _field_plan(cls) is None:
        _WRITERS[cls] = None
        return None
    env: dict[str, Any] = {
        "Decimal": Decimal, "datetime": datetime, "UTC": _UTC, "quote": _quote, "utc_json": _utc_json,
        "encode_model": _encode_model, "encode_compact": _encode_compact, "writer_of": _model_writer,
    }
    body = _model_lines(cls, "model", env, [0])
    source = "\n".join(["def write(model, out):", "    append = out.append", *("    " + line for line in body)])
    exec(compile(source, f"<OCPI JSON writer of {cls.__name__}>", "exec"), env)
    write = env["write"]
    if cls in _MEMO_LIMITS:
        write = _memoised(write, _MEMO_LIMITS[cls])
    _WRITERS[cls] = write
    for name, nested in env.get("LATE", []):  # writers of the nested non-leaf classes
        env[name] = _model_writer(nested)
    return write


#: OCPI model classes whose instances are written once and their text reused while the
#: instance is unchanged (see :func:`_memoised`), with the bound of remembered instances
#: per class: objects the pipeline reuses for many CDRs (the tariff version, the EVSE's
#: CdrLocation). Not CdrToken: mostly one CDR per token between reuses, and its inline
#: text (~1 µs) costs less than a memo miss. Filled below the class definitions.
_MEMO_LIMITS: dict[type, int] = {}

#: Leaf values that cannot change (exact types; a datetime only with a fixed-offset zone).
_IMMUTABLE_LEAVES = (str, int, bool, Decimal, date, type(None))


def _snapshot(value: Any, lists: list[list]) -> bool:
    """Collect every list reachable from ``value`` (through OCPI models, lists and tuples)
    into ``lists``; False when something reachable could change other than by changing one
    of those lists: anything but OCPI models (frozen), lists, tuples, enum members and
    immutable leaves, or a datetime with a zone other than a fixed offset."""
    t = type(value)
    if t in _IMMUTABLE_LEAVES or isinstance(value, Enum):
        return True
    if t is datetime:
        return value.tzinfo is None or type(value.tzinfo) is timezone
    if t is list or t is tuple:
        if t is list:
            lists.append(value)
        return all(_snapshot(item, lists) for item in value)
    if _FIELD_PLANS.get(t) is not None and t.model_config.get("frozen"):
        return all(_snapshot(item, lists) for item in value.__dict__.values())
    return False


def _memoised(write: Callable[[Any, list[str]], None], limit: int) -> Callable[[Any, list[str]], None]:
    """``write`` remembering the text it wrote per instance, reused while the instance is
    unchanged. OCPI models are frozen (pydantic refuses attribute assignment), their
    leaves are immutable values, so what can still change under the same object is the
    content of a list it holds (``tariff.elements.append(...)``, ``elements[0] = ...``,
    nested lists too): the memo keeps every such list with its length and the identity
    of each item (and the items themselves, so those identities are not reused), and the
    text is reused only when all of them are still the same. An instance holding
    anything else that could change (see :func:`_snapshot`) is written every time. The
    memo holds the instances (an id is not reused while they live) and is emptied when
    ``limit`` instances are remembered."""
    memo: dict[int, tuple] = {}
    ids_of = chain.from_iterable

    def write_memoised(model: Any, out: list[str]) -> None:
        entry = memo.get(id(model))
        if entry is not None and entry[0] is model:
            lists = entry[2]
            if not lists or (tuple(map(len, lists)) == entry[3] and tuple(map(id, ids_of(lists))) == entry[4]):
                out.append(entry[1])
                return
        buffer: list[str] = []
        write(model, buffer)
        text = "".join(buffer)
        lists = []
        if _snapshot(model, lists):
            items = tuple(ids_of(lists))
            if len(memo) >= limit:
                memo.clear()
            memo[id(model)] = (model, text, tuple(lists), tuple(map(len, lists)), tuple(map(id, items)), items)
        else:
            memo.pop(id(model), None)
        out.append(text)

    write_memoised.memo = memo  # type: ignore[attr-defined]
    write_memoised.unmemoised = write  # type: ignore[attr-defined]
    return write_memoised


def _encode_compact(value: Any, out: list[str]) -> None:
    """:func:`_encode` without indentation, dispatching on the exact type of the common
    values (plain str, Decimal, list, dict, UTC datetimes, OCPI models, enums) first; the
    same text, byte for byte: anything else (subclasses, other models, dates, ...) goes
    through :func:`_encode`. OCPI models are written from their field plan
    (:func:`_encode_model`), never through ``model_dump``."""
    t = type(value)
    if t is str:
        out.append(_quote(value))
    elif t is Decimal:
        out.append(_decimal_text(value))
    elif t is list or t is tuple:
        if not value:
            out.append("[]")
            return
        out.append("[")
        first = True
        for item in value:
            if first:
                first = False
            else:
                out.append(",")
            write = _WRITERS.get(type(item))
            if write is not None:
                write(item, out)
            else:
                _encode_compact(item, out)
        out.append("]")
    elif t is dict:
        if not value:
            out.append("{}")
            return
        out.append("{")
        first = True
        for key, item in value.items():
            if first:
                first = False
            else:
                out.append(",")
            out.append(_quote_ascii(key) if type(key) is str else json.dumps(str(key.value if isinstance(key, Enum) else key)))
            out.append(":")
            _encode_compact(item, out)
        out.append("}")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif t is int:
        out.append(str(value))
    elif t is datetime and value.tzinfo is _UTC:
        out.append('"' + format_ocpi_datetime(value) + '"')
    elif isinstance(value, BaseModel):
        write = _WRITERS[t] if t in _WRITERS else _model_writer(t)
        if write is not None:
            write(value, out)
        else:
            _encode_compact(value.model_dump(mode="python", exclude_none=True), out)
    elif isinstance(value, Enum):
        out.append(_enum_text(value))
    else:
        _encode(value, out, None, 0)


def _separators(indent: str | None, level: int) -> tuple[str, str, str]:
    if indent is None:
        return ",", "", ""
    return ",", "\n" + indent * (level + 1), "\n" + indent * level


def ocpi_dumps(value: Any, *, indent: int | None = None) -> str:
    """Write ``value`` as OCPI JSON: Decimals as exact JSON numbers, datetimes as OCPI
    DateTime, models without their None fields. Floats are refused (money is Decimal)."""
    out: list[str] = []
    if indent is None:
        _encode_compact(value, out)
    else:
        _encode(value, out, " " * indent, 0)
    return "".join(out)


def ocpi_loads(text: str | bytes | bytearray) -> Any:
    """Parse JSON with every non-integer number as an exact ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


# --------------------------------------------------------------------------------------
# Base types
# --------------------------------------------------------------------------------------


def _to_utc(value: datetime) -> datetime:
    # types.asciidoc DateTime: "The absence of the timezone designator implies a UTC timestamp."
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


#: OCPI DateTime: always an aware UTC datetime once parsed.
OcpiDateTime = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_ocpi_datetime, return_type=str, when_used="json"),
]

#: OCPI number (types.asciidoc): exact Decimal, finite.
Number = Annotated[Decimal, Field(allow_inf_nan=False)]


def _cistring(length: int) -> Any:
    """CiString(n): case-insensitive printable ASCII, at most n characters."""
    return Annotated[str, Field(max_length=length, pattern=r"^[\x20-\x7e]*$")]


def _string(length: int) -> Any:
    return Annotated[str, Field(max_length=length)]


class OcpiModel(BaseModel):
    """Base of the OCPI objects: frozen values with exact JSON in and out."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=False)

    @classmethod
    def model_validate_json(  # type: ignore[override]
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        context: Any | None = None,
        **_: Any,
    ):
        """Parse OCPI JSON keeping every number exact (``Decimal``, not via float)."""
        return cls.model_validate(ocpi_loads(json_data), strict=strict, context=context)

    def model_dump_json(  # type: ignore[override]
        self, *, indent: int | None = None, exclude_none: bool = True, **kwargs: Any
    ) -> str:
        """OCPI JSON: Decimals as exact numbers, None fields left out by default."""
        if indent is None and exclude_none and not kwargs:
            write = _model_writer(type(self))
            if write is not None:  # the same text as below, without building the dump
                out: list[str] = []
                write(self, out)
                return "".join(out)
        data = self.model_dump(mode="python", exclude_none=exclude_none, **kwargs)
        return ocpi_dumps(data, indent=indent)


# --------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------


class TariffType(str, Enum):
    """mod_tariffs TariffType."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class TariffDimensionType(str, Enum):
    """mod_tariffs TariffDimensionType: what a price component prices."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(str, Enum):
    """mod_tariffs DayOfWeek (order = ISO weekday order, Monday first)."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationRestrictionType(str, Enum):
    """mod_tariffs ReservationRestrictionType."""

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class AuthMethod(str, Enum):
    """mod_cdrs AuthMethod."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class CdrDimensionType(str, Enum):
    """mod_cdrs CdrDimensionType (CURRENT, ENERGY_EXPORT, ENERGY_IMPORT, POWER and
    STATE_OF_CHARGE are "Session only" but parse, so a partner's CDR never crashes us)."""

    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


class TokenType(str, Enum):
    """mod_tokens TokenType."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class ConnectorFormat(str, Enum):
    """mod_locations ConnectorFormat."""

    SOCKET = "SOCKET"
    CABLE = "CABLE"


class ConnectorType(str, Enum):
    """mod_locations ConnectorType."""

    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
    IEC_60309_2_single_16 = "IEC_60309_2_single_16"
    IEC_60309_2_three_16 = "IEC_60309_2_three_16"
    IEC_60309_2_three_32 = "IEC_60309_2_three_32"
    IEC_60309_2_three_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class PowerType(str, Enum):
    """mod_locations PowerType."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class EnergySourceCategory(str, Enum):
    """mod_locations EnergySourceCategory."""

    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(str, Enum):
    """mod_locations EnvironmentalImpactCategory."""

    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


# --------------------------------------------------------------------------------------
# Shared classes (types.asciidoc, mod_locations)
# --------------------------------------------------------------------------------------


class DisplayText(OcpiModel):
    """types DisplayText."""

    language: _string(2)
    text: _string(512)


class Price(OcpiModel):
    """types Price: ``incl_vat`` is optional in the spec (absent = unknown)."""

    excl_vat: Number
    incl_vat: Number | None = None


class EnergySource(OcpiModel):
    source: EnergySourceCategory
    percentage: Number


class EnvironmentalImpact(OcpiModel):
    category: EnvironmentalImpactCategory
    amount: Number


class EnergyMix(OcpiModel):
    """mod_locations EnergyMix."""

    is_green_energy: bool
    energy_sources: list[EnergySource] | None = None
    environ_impact: list[EnvironmentalImpact] | None = None
    supplier_name: _string(64) | None = None
    energy_product_name: _string(64) | None = None


class GeoLocation(OcpiModel):
    """mod_locations GeoLocation: decimal degrees kept as the spec's strings."""

    latitude: Annotated[str, Field(max_length=10, pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$")]
    longitude: Annotated[str, Field(max_length=11, pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$")]


# --------------------------------------------------------------------------------------
# Tariffs (mod_tariffs)
# --------------------------------------------------------------------------------------

_TIME_OF_DAY = r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$"
_DATE = r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class PriceComponent(OcpiModel):
    """mod_tariffs PriceComponent. ``vat`` absent = no VAT applies (not 0 %)."""

    type: TariffDimensionType
    price: Number
    vat: Number | None = None
    step_size: Annotated[int, Field(ge=0)]


class TariffRestrictions(OcpiModel):
    """mod_tariffs TariffRestrictions: all set restrictions must hold (logical AND)."""

    start_time: Annotated[str, Field(pattern=_TIME_OF_DAY)] | None = None
    end_time: Annotated[str, Field(pattern=_TIME_OF_DAY)] | None = None
    start_date: Annotated[str, Field(pattern=_DATE)] | None = None
    end_date: Annotated[str, Field(pattern=_DATE)] | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[DayOfWeek] | None = None
    reservation: ReservationRestrictionType | None = None


class TariffElement(OcpiModel):
    """mod_tariffs TariffElement."""

    price_components: Annotated[list[PriceComponent], Field(min_length=1)]
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    """mod_tariffs Tariff object."""

    country_code: _cistring(2)
    party_id: _cistring(3)
    id: _cistring(36)
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: _string(255) | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    start_date_time: OcpiDateTime | None = None
    end_date_time: OcpiDateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: OcpiDateTime


# --------------------------------------------------------------------------------------
# CDRs (mod_cdrs)
# --------------------------------------------------------------------------------------


class CdrToken(OcpiModel):
    """mod_cdrs CdrToken."""

    country_code: _cistring(2)
    party_id: _cistring(3)
    uid: _cistring(36)
    type: TokenType
    contract_id: _cistring(36)


class CdrLocation(OcpiModel):
    """mod_cdrs CdrLocation (no time zone: see pricing rule 2)."""

    id: _cistring(36)
    name: _string(255) | None = None
    address: _string(45)
    city: _string(45)
    postal_code: _string(10) | None = None
    state: _string(20) | None = None
    country: _string(3)
    coordinates: GeoLocation
    evse_uid: _cistring(36)
    evse_id: _cistring(48)
    connector_id: _cistring(36)
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType


class CdrDimension(OcpiModel):
    """mod_cdrs CdrDimension: ``volume`` in the dimension's unit (kWh, h, A, kW)."""

    type: CdrDimensionType
    volume: Number


class ChargingPeriod(OcpiModel):
    """mod_cdrs ChargingPeriod: ends where the next one starts (the last at session end)."""

    start_date_time: OcpiDateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]
    tariff_id: _cistring(36) | None = None

    def volume(self, kind: CdrDimensionType) -> Decimal | None:
        """The volume of dimension ``kind`` in this period, or None when absent."""
        for dim in self.dimensions:
            if dim.type is kind:
                return dim.volume
        return None


class SignedValue(OcpiModel):
    """mod_cdrs SignedValue."""

    nature: _cistring(32)
    plain_data: _string(5000)
    signed_data: _string(5000)


class SignedData(OcpiModel):
    """mod_cdrs SignedData."""

    encoding_method: _cistring(36)
    encoding_method_version: int | None = None
    public_key: _string(512) | None = None
    signed_values: Annotated[list[SignedValue], Field(min_length=1)]
    url: _string(512) | None = None


class Cdr(OcpiModel):
    """mod_cdrs CDR object."""

    country_code: _cistring(2)
    party_id: _cistring(3)
    id: _cistring(39)
    start_date_time: OcpiDateTime
    end_date_time: OcpiDateTime
    session_id: _cistring(36) | None = None
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: _cistring(36) | None = None
    cdr_location: CdrLocation
    meter_id: _string(255) | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    tariffs: list[Tariff] | None = None
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]
    signed_data: SignedData | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Number
    total_energy_cost: Price | None = None
    total_time: Number
    total_time_cost: Price | None = None
    total_parking_time: Number | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: _string(255) | None = None
    invoice_reference_id: _cistring(39) | None = None
    credit: bool | None = None
    credit_reference_id: _cistring(39) | None = None
    home_charging_compensation: bool | None = None
    last_updated: OcpiDateTime


_MEMO_LIMITS.update({Tariff: 256, CdrLocation: 8192})
