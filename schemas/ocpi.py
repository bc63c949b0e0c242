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
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

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
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


def _decimal_text(value: Decimal) -> str:
    """The exact text of a Decimal as a JSON number (no exponent, no quotes)."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


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


def _encode_compact(value: Any, out: list[str]) -> None:
    """:func:`_encode` without indentation, dispatching on the exact type of the common
    values (plain str, dict, list, Decimal) first; the same text, byte for byte: anything
    else (enums, subclasses, datetimes, ...) goes through :func:`_encode`."""
    t = type(value)
    if t is str:
        out.append(_quote(value))
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
    elif t is list or t is tuple:
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode_compact(item, out)
        out.append("]")
    elif t is Decimal:
        out.append(_decimal_text(value))
    elif value is None:
        out.append("null")
    elif isinstance(value, BaseModel):
        _encode_compact(value.model_dump(mode="python", exclude_none=True), out)
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
