"""What OCPP 1.6 and 2.0.1/2.1 messages share: the error type, exact numbers, units.

Numbers
-------
Energy, power and current become :class:`~decimal.Decimal` exactly:

* OCPP 1.6 ``sampledValue.value`` is a string (OCPP 1.6 section 7.43 SampledValue); it is
  parsed with ``Decimal(text)``.
* OCPP 2.0.1 ``sampledValue.value`` is a JSON number (OCPP 2.0.1 part 2, SampledValueType).
  The envelope's payload is usually a dict already parsed by ``json``/pydantic, so the
  number may arrive as a Python ``float``. We convert it with ``Decimal(repr(x))``: Python's
  ``repr`` of a float is the shortest text that reads back as the same float, which is the
  charger's own text for every value with at most 15 significant digits (all real meter
  readings). We never do ``Decimal(x)`` on a float (that would give the binary expansion,
  e.g. ``0.1`` -> ``0.1000000000000000055511151231257827...``). Payloads parsed with
  ``json.loads(..., parse_float=Decimal)`` pass through unchanged.

Units (OCPP 1.6 section 7.48 UnitOfMeasure; 2.0.1 UnitOfMeasureType)
------------------------------------------------------------------
Energy registers default to ``Wh``. ``kWh`` is accepted. 2.0.1 adds ``multiplier``, a power
of ten applied to the value *before* the unit (``value * 10**multiplier`` in ``unit``).
Conversions use ``Decimal.scaleb`` and are therefore exact.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow, Subnormal, Underflow
from typing import Any, Callable

from pydantic import BaseModel

#: The measurand a sample has when it names none (OCPP 1.6 7.43; 2.0.1 MeasurandEnumType).
DEFAULT_MEASURAND = "Energy.Active.Import.Register"

ENERGY_IMPORT_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
CURRENT_IMPORT = "Current.Import"

#: Units we convert, per measurand we bill on: unit -> power of ten to reach kWh / kW / A.
_ENERGY_UNITS = {"Wh": -3, "kWh": 0}
_POWER_UNITS = {"W": -3, "kW": 0}
_CURRENT_UNITS = {"A": 0}
_UNITS_BY_MEASURAND = {
    ENERGY_IMPORT_REGISTER: (_ENERGY_UNITS, "Wh"),
    POWER_IMPORT: (_POWER_UNITS, "W"),
    CURRENT_IMPORT: (_CURRENT_UNITS, "A"),
}

#: Unit spellings of the OCPP 1.6 enum (and the 2.0.1 standardized list). Chargers send
#: ``kwh`` or ``KWH``; matching case-insensitively is unambiguous because no two of these
#: differ only by case.
KNOWN_UNITS = (
    "Wh", "kWh", "varh", "kvarh", "W", "kW", "VA", "kVA", "var", "kvar", "A", "V", "K",
    "Celcius", "Celsius", "Fahrenheit", "Percent", "Hertz",
)
_UNIT_BY_FOLDED = {u.lower(): u for u in KNOWN_UNITS}
assert len(_UNIT_BY_FOLDED) == len(KNOWN_UNITS)
_KNOWN_UNIT_SET = frozenset(KNOWN_UNITS)


class InvalidMessage(ValueError):
    """An inbound OCPP message we cannot accept; ``reason`` says which field and why.

    The pipeline dead-letters the envelope with this reason (never drops it).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical_unit(unit: str) -> str:
    """The OCPP spelling of ``unit`` when it only differs by case (``kwh`` -> ``kWh``)."""
    if unit in _KNOWN_UNIT_SET:  # already the OCPP spelling (the folding is one-to-one)
        return unit
    return _UNIT_BY_FOLDED.get(unit.lower(), unit)


def decimal_from_json_number(value: Any, where: str) -> Decimal:
    """A JSON number (int, float or Decimal) as an exact Decimal; see module docstring."""
    if isinstance(value, bool):
        raise InvalidMessage(f"{where}: expected a number, got a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        return decimal_from_text(value, where)
    else:
        raise InvalidMessage(f"{where}: expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise InvalidMessage(f"{where}: {value!r} is not a finite number")
    return result


def decimal_from_text(text: str, where: str) -> Decimal:
    """A decimal number written as text (OCPP 1.6 sampledValue.value), exactly.

    Accepted: optional sign, digits, optional ``.`` fraction, optional exponent, surrounding
    blanks. Rejected (ambiguous or not a reading): empty text, a decimal comma (``"12,5"``
    could be 12.5 or 125 with a thousands separator), NaN / Infinity.
    """
    stripped = text.strip()
    if not stripped:
        raise InvalidMessage(f"{where}: empty value, expected a decimal number")
    if "," in stripped:
        raise InvalidMessage(
            f"{where}: {text!r} uses a comma; ambiguous (decimal comma or thousands "
            "separator), expected a decimal number with a point"
        )
    try:
        result = Decimal(stripped)
    except InvalidOperation:
        raise InvalidMessage(f"{where}: {text!r} is not a decimal number") from None
    if not result.is_finite():
        raise InvalidMessage(f"{where}: {text!r} is not a finite number")
    return result


#: Unit conversions must be exact: a multiplier that pushes a value out of Decimal's range
#: (``decimal.Overflow`` / ``Underflow``) or a value with more digits than the precision
#: (rounded, ``Inexact``) is refused instead of being billed approximately or crashing.
_EXACT = Context(prec=28, traps=[InvalidOperation, Overflow, Underflow, Subnormal, Inexact])


def _scaled(value: Decimal, exponent: int, multiplier: int) -> Decimal:
    try:
        return value.scaleb(exponent, _EXACT)
    except DecimalException:
        raise ValueError(
            f"value {value} with unitOfMeasure.multiplier {multiplier} cannot be converted "
            "exactly (out of range or too many digits)"
        ) from None


def convert(measurand: str, value: Decimal, unit: str | None, multiplier: int) -> Decimal | None:
    """``value`` in kWh (energy), kW (power) or A (current) for the measurands we bill on.

    Returns None for any other measurand. Raises ValueError when the unit does not fit
    the measurand (e.g. ``Energy.Active.Import.Register`` in ``A``), for a negative energy
    register, or when the multiplier cannot be applied exactly, because guessing would
    bill the wrong amount.
    """
    exponent = _exponent(measurand, unit, multiplier)
    if exponent is None:
        return None
    if measurand == ENERGY_IMPORT_REGISTER and value < 0:
        raise ValueError(f"negative energy register value {value} (an import register only counts up)")
    return _scaled(value, exponent, multiplier)


def _exponent(measurand: str, unit: str | None, multiplier: int) -> int | None:
    """The power of ten from ``unit`` (with ``multiplier``) to kWh / kW / A for the
    measurands we bill on, None for any other; ValueError when the unit does not fit."""
    table = _UNITS_BY_MEASURAND.get(measurand)
    if table is None:
        return None
    units, default = table
    unit = default if unit is None else canonical_unit(unit)
    if unit not in units:
        raise ValueError(
            f"unit {unit!r} is not a unit of {measurand} (expected one of {sorted(units)})"
        )
    return multiplier + units[unit]


#: Default of ``dict.get`` that tells an absent key from one given as null (both versions' fast constructors).
MISSING: Any = object()


def any_sampled_value(meter_values: list[Any], predicate: Callable[[Any], bool]) -> bool:
    """Whether ``predicate`` holds for a sampled value of the (not yet validated) meterValue
    list, e.g. one that needs a rewrite (plain loops: this runs for every message with
    meter values)."""
    for mv in meter_values:
        if isinstance(mv, dict):
            samples = mv.get("sampledValue")
            if isinstance(samples, list):
                for sv in samples:
                    if predicate(sv):
                        return True
    return False


def json_path(path: Any) -> str:
    """``['meterValue', 0, 'sampledValue', 1, 'value']`` -> ``meterValue[0].sampledValue[1].value``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(payload)"


class MeasurandReadings:
    """The accessors both versions' SampledValue share: the value converted to kWh / kW / A
    (``_converted``, set by the version's own validator) when it is that measurand."""

    _converted: Decimal | None

    # ``self._converted`` goes through pydantic's ``__getattr__`` for private attributes
    # (~1.4 µs); the accessors read pydantic's private-attribute dict directly (~0.05 µs).

    @property
    def converted(self) -> Decimal | None:
        return self.__pydantic_private__["_converted"]  # type: ignore[attr-defined]

    def energy_kwh(self) -> Decimal | None:
        if self.measurand == ENERGY_IMPORT_REGISTER:  # type: ignore[attr-defined]
            return self.__pydantic_private__["_converted"]  # type: ignore[attr-defined]
        return None

    def power_kw(self) -> Decimal | None:
        if self.measurand == POWER_IMPORT:  # type: ignore[attr-defined]
            return self.__pydantic_private__["_converted"]  # type: ignore[attr-defined]
        return None

    def current_a(self) -> Decimal | None:
        if self.measurand == CURRENT_IMPORT:  # type: ignore[attr-defined]
            return self.__pydantic_private__["_converted"]  # type: ignore[attr-defined]
        return None


# --- the fast constructors' shared parts ---------------------------------------------------
#
# After a payload passed its OCA schema, :mod:`schemas.ocpp16` / :mod:`schemas.ocpp201` build
# the models we bill on directly (about 3x cheaper than pydantic validation) when every
# field is of the plain shape real chargers send; for anything else they raise
# :class:`NotFast` and pydantic validates as before (and writes the reason of a refusal).
# A fast constructor must return exactly what ``Model.model_validate(payload)`` returns
# (field values, fields set, private attributes): tests/unit/test_ocpp_fastbuild.py checks
# both on valid, varied and broken payloads.


class NotFast(Exception):
    """The fast constructor does not vouch for this payload: pydantic decides."""


#: RFC 3339 date-time as OCPP-J sends it (offset required and valid, at most microseconds:
#: ``datetime.fromisoformat`` reads ``+00:60`` as +01:00, pydantic refuses it). Every
#: string of this shape that :meth:`datetime.fromisoformat` reads is read alike by
#: pydantic (speedate); anything else goes to pydantic.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_timestamp_shape = _TIMESTAMP.fullmatch
_from_iso = datetime.fromisoformat
_UTC = timezone.utc


def parse_utc(value: Any) -> datetime:
    """``value`` (an RFC 3339 text with an offset) as a UTC datetime, like pydantic's
    ``AwareDatetime`` followed by the models' ``astimezone(timezone.utc)``; NotFast otherwise."""
    if value.__class__ is not str or _timestamp_shape(value) is None:
        raise NotFast
    try:
        return _from_iso(value).astimezone(_UTC)
    except (ValueError, OverflowError):
        raise NotFast from None


#: Texts :func:`fast_utc` read lately -> their datetime (immutable, so shared). Chargers send
#: whole seconds and a TransactionEvent usually repeats its timestamp in its meterValue,
#: so at a thousand events a second most texts were just read. Emptied when full.
_UTC_MEMO: dict[str, datetime] = {}
_UTC_MEMO_SIZE = 4096


def fast_utc(value: Any) -> datetime:
    """:func:`parse_utc`, remembering the texts it read (``_UTC_MEMO``: only texts it accepted)."""
    if value.__class__ is str:
        known = _UTC_MEMO.get(value)
        if known is not None:
            return known
    parsed = parse_utc(value)
    if len(_UTC_MEMO) >= _UTC_MEMO_SIZE:
        _UTC_MEMO.clear()
    _UTC_MEMO[value] = parsed
    return parsed


#: The memo's lookup, for the one-pass builders: ``known_utc(text) or fast_utc(text)`` (a
#: datetime is never false) reads a text read before without a call.
known_utc = _UTC_MEMO.get


def fast_tuple_reader(build_one: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    """The reader of a schema-valid JSON list as the tuple of ``build_one`` of its items;
    NotFast when the value is not a list (a meterValue list of 1.6 or 2.0.1)."""
    def read(items: Any) -> tuple:
        if items.__class__ is not list:
            raise NotFast
        return tuple(map(build_one, items))
    return read


def fast_int(value: Any) -> int:
    """A JSON integer as pydantic's ``int`` field keeps it (exact ``int`` only; NotFast else)."""
    if value.__class__ is not int:
        raise NotFast
    return value


def fast_str(value: Any) -> str:
    """A JSON string as pydantic's ``str`` field keeps it (exact ``str`` only; NotFast else)."""
    if value.__class__ is not str:
        raise NotFast
    return value


_new = object.__new__
#: The setters of pydantic's four instance slots (``BaseModel.__slots__``), called directly:
#: what ``object.__setattr__(obj, name, value)`` finds and calls for these names, without
#: the name lookup (~0.05 us instead of ~0.09 us each). ``__dict__``'s setter is the generic
#: one of every class with an instance dict (the same function whichever class in the MRO
#: holds it).
set_dict = BaseModel.__dict__["__dict__"].__set__
set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def construct(cls: type, values: dict[str, Any], fields_set: set[str], private: dict[str, Any] | None = None) -> Any:
    """An instance of the pydantic model ``cls`` holding ``values`` (already validated), in
    the state ``model_validate`` leaves it in: ``__dict__`` with every field in declaration
    order, the names of the fields the input carried, no extra, the private attributes."""
    obj = _new(cls)
    set_dict(obj, values)
    set_fields_set(obj, fields_set)
    set_extra(obj, None)
    set_private(obj, private)
    return obj


#: (measurand, unit, multiplier) -> power of ten to kWh / kW / A (None: not billed on), as
#: :func:`convert` computes it; bounded (the schema limits measurands, units are short).
_EXPONENTS: dict[tuple[Any, Any, Any], int | None] = {}


def fast_convert(measurand: str, value: Decimal, unit: str | None, multiplier: int) -> Decimal | None:
    """:func:`convert` with the unit lookup cached; NotFast where convert raises ValueError."""
    key = (measurand, unit, multiplier)
    try:
        exponent = _EXPONENTS[key]
    except KeyError:
        try:
            exponent = _exponent(measurand, unit, multiplier)
        except ValueError:
            raise NotFast from None  # convert() words the refusal
        if len(_EXPONENTS) < 1024:
            _EXPONENTS[key] = exponent
    if exponent is None:
        return None
    if measurand == ENERGY_IMPORT_REGISTER and value < 0:
        raise NotFast
    try:
        return value.scaleb(exponent, _EXACT)
    except DecimalException:
        raise NotFast from None  # convert() words the refusal


#: For the one-pass builders, :func:`fast_convert` written out: ``known_exponent((measurand,
#: unit, multiplier), MISSING)`` is the cached power of ten (MISSING: not cached yet, call
#: fast_convert), then ``value.scaleb(exponent, EXACT)`` (after the negative-register check).
known_exponent = _EXPONENTS.get
EXACT = _EXACT


def renamed_fields(model: type) -> frozenset[str]:
    """The Python names of ``model``'s fields whose wire name differs (``seq_no`` for
    ``seqNo``): pydantic also accepts those keys (populate_by_name), the fast constructors
    hand a payload carrying one to pydantic."""
    return frozenset(name for name, field in model.model_fields.items() if field.alias not in (None, name))


def fields_set_table(always: tuple[str, ...], optional: tuple[str, ...]) -> tuple[set[str], ...]:
    """The fields sets of a model whose ``always`` fields are always given and each of
    ``optional`` maybe, indexed by the bit mask of the given optional ones (bit i:
    ``optional[i]``). The one-pass builders share these sets between the models they build:
    the models are frozen, so nothing adds to a fields set (``model_copy`` copies it first),
    as :func:`sessions.events.trusted` and :func:`schemas.readings.reading_of` share theirs."""
    return tuple({*always, *(name for bit, name in enumerate(optional) if mask >> bit & 1)}
                 for mask in range(1 << len(optional)))


def meter_value_builder(model: type[BaseModel]) -> Callable[[dict[str, Any], str, list[Any]], BaseModel]:
    """The one-pass builder of a ``MeterValue`` model (1.6 and 2.0.1/2.1 have the same two
    fields): the timestamp text checked by the schema pass, its sampled values built."""
    fields_set = {"timestamp", "sampled_value"}

    def build(data: dict[str, Any], timestamp: str, sampled: list[Any]) -> BaseModel:
        obj = _new(model)
        set_dict(obj, {"timestamp": known_utc(timestamp) or fast_utc(timestamp), "sampled_value": tuple(sampled)})
        set_fields_set(obj, fields_set)
        set_extra(obj, None)
        set_private(obj, None)
        return obj

    return build
