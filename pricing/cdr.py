"""Priced sessions to OCPI CDRs, credit CDRs, and re-pricing a given CDR (mod_cdrs)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Iterable

from pydantic_core import PydanticUndefined

from schemas.ocpi import (
    AuthMethod,
    Cdr,
    CdrDimension,
    CdrLocation,
    CdrToken,
    ChargingPeriod,
    Price,
    Tariff,
    _decimal_text,
    _model_writer,
    _quote,
    _to_utc,
    _utc_json,
    format_ocpi_datetime,
)
from schemas.readings import MeterReading

from .engine import _ZERO_PAIR, CurrencyMismatch, Finding, PricedSession, cdr_amount, cdr_period, price_periods
from .periods import charging_periods_from_readings


def price_session(
    readings: Iterable[MeterReading],
    tariff: Tariff,
    *,
    time_zone: str,
    session_start: datetime,
    session_end: datetime,
) -> PricedSession:
    """Our own session: readings -> charging periods (split at every price boundary,
    rule 3) -> priced with ``tariff`` (the version valid at the session start, rule 10)."""
    periods = charging_periods_from_readings(
        readings, tariff, time_zone=time_zone, session_start=session_start, session_end=session_end
    )
    return price_periods(periods, tariff, time_zone=time_zone, session_start=session_start, session_end=session_end)


def build_cdr(
    priced: PricedSession,
    *,
    id: str,
    country_code: str,
    party_id: str,
    session_id: str | None,
    start_date_time: datetime,
    end_date_time: datetime,
    cdr_token: CdrToken,
    auth_method: AuthMethod,
    cdr_location: CdrLocation,
    tariff: Tariff,
    last_updated: datetime,
    remark: str | None = None,
    credit: bool = False,
    credit_reference_id: str | None = None,
) -> Cdr:
    """The OCPI CDR of a priced session: its periods (volumes with at most 4 decimals),
    every total (4 decimals ROUND_HALF_UP, rule 9), and the tariff that priced it (a
    CDR keeps the tariff as it was at the session start, mod_cdrs CDR object)."""
    if tariff.currency != priced.currency:
        raise CurrencyMismatch(f"tariff currency {tariff.currency} differs from the priced session's {priced.currency}")
    # What Cdr(**fields) runs (BaseModel.__init__ hands the keywords to this validator):
    # the CDR is still validated, the parts are model instances so they are not re-validated.
    return _validate_cdr({
        "country_code": country_code,
        "party_id": party_id,
        "id": id,
        "start_date_time": start_date_time,
        "end_date_time": end_date_time,
        "session_id": session_id,
        "cdr_token": cdr_token,
        "auth_method": auth_method,
        "cdr_location": cdr_location,
        "currency": priced.currency,
        "tariffs": [tariff],
        "charging_periods": [_cdr_period(p) for p in priced.charging_periods],
        "remark": remark,
        "credit": True if credit else None,
        "credit_reference_id": credit_reference_id,
        "last_updated": last_updated,
        "total_cost": priced.total_cost,
        "total_fixed_cost": priced.total_fixed_cost,
        "total_energy": priced.total_energy,
        "total_energy_cost": priced.total_energy_cost,
        "total_time": priced.total_time,
        "total_time_cost": priced.total_time_cost,
        "total_parking_time": priced.total_parking_time,
        "total_parking_cost": priced.total_parking_cost,
        "total_reservation_cost": priced.total_reservation_cost,
    })


_validate_cdr = Cdr.__pydantic_validator__.validate_python
_set_attribute = object.__setattr__


def _copy_with(model, name: str, value):
    """``model.model_copy(update={name: value})`` for an OCPI model (extra="ignore"): what
    pydantic's ``__copy__`` and the update do (shallow copies of ``__dict__``, extra and
    fields set, private attributes without undefined ones; then the value set and its name
    added to the fields set), without the generic detour."""
    cls = type(model)
    copied = cls.__new__(cls)
    fields = model.__dict__.copy()
    fields[name] = value
    _set_attribute(copied, "__dict__", fields)
    extra = model.__pydantic_extra__
    _set_attribute(copied, "__pydantic_extra__", None if extra is None else extra.copy())
    fields_set = model.__pydantic_fields_set__.copy()
    fields_set.add(name)
    _set_attribute(copied, "__pydantic_fields_set__", fields_set)
    private = getattr(model, "__pydantic_private__", None)
    _set_attribute(copied, "__pydantic_private__", None if private is None else
                   {k: v for k, v in private.items() if v is not PydanticUndefined})
    return copied


def _more_than_4_decimals(value: Decimal) -> bool:
    """``value.as_tuple().exponent < -4`` (the test of ``engine.cdr_number``), read from
    ``str(value)`` when that is plain notation: then it has exactly ``-exponent`` digits after
    its point (General Decimal Arithmetic to-scientific-string, exponent <= 0), none when it
    has no point (exponent 0). Exponent notation and non-finite values: ``as_tuple``."""
    text = str(value)
    if "E" in text or "e" in text or not value.is_finite():
        return value.as_tuple().exponent < -4  # type: ignore[operator]
    point = text.find(".")
    return point >= 0 and len(text) - point > 5


def _cdr_period(period: ChargingPeriod) -> ChargingPeriod:
    """``engine.cdr_period``: the period as written into a CDR, every volume with at most 4
    decimals (``cdr_number``). Where that copies the period, a dimension whose volume has at
    most 4 decimals already is kept as it is (``cdr_number`` returns its volume itself, so
    the copy would be an equal object with the same fields set), the others are copied with
    the rounded volume; exact classes only, anything else goes to ``cdr_period``."""
    if type(period) is not ChargingPeriod:
        return cdr_period(period)
    dims = period.dimensions
    out = None
    plain = True
    for i, d in enumerate(dims):
        if plain and (type(d) is not CdrDimension or "volume" not in d.__pydantic_fields_set__):
            if out is not None:
                return cdr_period(period)
            plain = False
        if _more_than_4_decimals(d.volume):
            if not plain:
                return cdr_period(period)
            if out is None:
                out = list(dims[:i])
            out.append(_copy_with(d, "volume", cdr_amount(d.volume)))
        elif out is not None:
            out.append(d)
    if out is None:
        return period
    return _copy_with(period, "dimensions", out)


_UTC = timezone.utc
_AUTH_METHOD_TEXTS = {member: json.dumps(member.value) for member in AuthMethod}


def _ci_string(value, length: int) -> bool:
    """``value`` is what an OCPI CiString(``length``) field keeps as it is: an exact str of
    at most ``length`` printable ASCII characters (the pattern ``^[\\x20-\\x7e]*$``)."""
    return type(value) is str and len(value) <= length and value.isascii() and value.isprintable()


def _datetime_json(value: datetime) -> str:
    """The JSON of an OCPI DateTime field holding ``value`` (what validation keeps: UTC)."""
    value = _to_utc(value)
    if value.tzinfo is _UTC and value.year >= 1000:
        return _utc_json(value)
    return '"' + format_ocpi_datetime(value) + '"'


def _volume_json(value: Decimal) -> str:
    """The JSON of a finite CDR period volume (``_cdr_period``: at most 4 decimals):
    ``_decimal_text(cdr_amount(value) if _more_than_4_decimals(value) else value)``, its
    ``str`` directly when that has no exponent and at most 4 decimals."""
    text = str(value)
    if "E" not in text:
        point = text.find(".")
        if point < 0 or len(text) - point <= 5:
            return "0" if text == "-0" else text
    return _decimal_text(cdr_amount(value) if _more_than_4_decimals(value) else value)


#: The JSON of the Price of a cost group nothing was added to (``engine._ZERO_PAIR``).
_ZERO_PRICE_JSON = '{"excl_vat":0.0000,"incl_vat":0.0000}'


def _price_json(pair: tuple[Decimal, Decimal]) -> str:
    """The JSON of ``Price(excl_vat=pair[0], incl_vat=pair[1])``."""
    if pair is _ZERO_PAIR:
        return _ZERO_PRICE_JSON
    return '{"excl_vat":' + _decimal_text(pair[0]) + ',"incl_vat":' + _decimal_text(pair[1]) + "}"


def _plain_volume(value) -> bool:
    return type(value) is Decimal and value.is_finite()


def cdr_json_from_rows(
    priced: tuple,
    rows: list[tuple],
    *,
    id: str,
    country_code: str,
    party_id: str,
    session_id: str | None,
    start_date_time: datetime,
    end_date_time: datetime,
    cdr_token_json: str,
    auth_method: AuthMethod,
    cdr_location: CdrLocation,
    tariff: Tariff,
    tariff_json: str,
    last_updated: datetime,
    remark: str | None = None,
) -> tuple[str, datetime, datetime, datetime] | None:
    """The OCPI JSON of ``build_cdr(...)`` (credit False), written from plain data: the
    period rows of ``periods.period_rows_from_readings`` and their pricing by
    ``engine.price_rows``, without making the ChargingPeriods, Prices and the Cdr (issue 4:
    validating the Cdr and writing it cost as much as pricing the session). Returns (that
    JSON, the Cdr's start_date_time, end_date_time and last_updated: the values in UTC), or
    None when a value is not one validation keeps as it is (then build_cdr decides, with
    its error if any): tests/unit/test_cdr_plain_json.py compares the two over random
    sessions, tariffs and values.

    The text is what ``Cdr.model_dump_json()`` writes for the validated Cdr: its fields in
    declaration order, None ones left out; the periods' volumes with at most 4 decimals
    (``_cdr_period``); the location by its own writer. ``cdr_token_json`` is the JSON of
    the (validated) CdrToken ``build_cdr`` is given, ``tariff_json`` the JSON of ``tariff``
    (``model_dump_json()``; the caller keeps it, so that the tariff is not written, nor
    checked for changes by the writer's memo, per CDR)."""
    currency = priced[0]
    if type(tariff) is not Tariff or tariff.currency != currency:
        return None  # build_cdr: CurrencyMismatch (or a validation error)
    tariff_id = tariff.id
    if not (_ci_string(id, 39) and _ci_string(country_code, 2) and _ci_string(party_id, 3)
            and (session_id is None or _ci_string(session_id, 36)) and _ci_string(tariff_id, 36)
            and type(currency) is str and len(currency) == 3
            and (remark is None or (type(remark) is str and len(remark) <= 255))
            and type(cdr_token_json) is str and type(tariff_json) is str and type(cdr_location) is CdrLocation
            and type(auth_method) is AuthMethod and rows
            and type(start_date_time) is datetime and type(end_date_time) is datetime
            and type(last_updated) is datetime):
        return None
    start, end, updated = _to_utc(start_date_time), _to_utc(end_date_time), _to_utc(last_updated)
    head = (f'{{"country_code":{_quote(country_code)},"party_id":{_quote(party_id)},"id":{_quote(id)}'
            f',"start_date_time":{_datetime_json(start)},"end_date_time":{_datetime_json(end)}')
    out = [head if session_id is None else f'{head},"session_id":{_quote(session_id)}',
           f',"cdr_token":{cdr_token_json},"auth_method":{_AUTH_METHOD_TEXTS[auth_method]},"cdr_location":']
    _model_writer(CdrLocation)(cdr_location, out)  # type: ignore[misc]
    append = out.append
    append(f',"currency":{_quote(currency)},"tariffs":[{tariff_json}],"charging_periods":[')
    tail = '],"tariff_id":' + _quote(tariff_id) + "}"
    sep = ""
    for period_start, energy, charging, parking, reservation, max_power, min_power, max_current, min_current in rows:
        # the rows of periods._row: ENERGY, TIME or PARKING_TIME, MIN/MAX_POWER and
        # MIN/MAX_CURRENT in pairs
        if (reservation is not None or (charging is None) == (parking is None) or not _plain_volume(energy)
                or not _plain_volume(charging if parking is None else parking)
                or type(period_start) is not datetime):
            return None
        text = (f'{sep}{{"start_date_time":{_datetime_json(period_start)},"dimensions":[{{"type":"ENERGY","volume":'
                f'{_volume_json(energy)}}},')
        if parking is None:
            text += f'{{"type":"TIME","volume":{_volume_json(charging)}}}'
        else:
            text += f'{{"type":"PARKING_TIME","volume":{_volume_json(parking)}}}'
        if min_power is not None or max_power is not None:
            if not (_plain_volume(min_power) and _plain_volume(max_power)):
                return None
            text += (f',{{"type":"MIN_POWER","volume":{_volume_json(min_power)}}}'
                     f',{{"type":"MAX_POWER","volume":{_volume_json(max_power)}}}')
        if min_current is not None or max_current is not None:
            if not (_plain_volume(min_current) and _plain_volume(max_current)):
                return None
            text += (f',{{"type":"MIN_CURRENT","volume":{_volume_json(min_current)}}}'
                     f',{{"type":"MAX_CURRENT","volume":{_volume_json(max_current)}}}')
        append(text)
        append(tail)
        sep = ","
    append(f'],"total_cost":{_price_json(priced[_TOTAL_COST])}'
           f',"total_fixed_cost":{_price_json(priced[_TOTAL_FIXED_COST])}'
           f',"total_energy":{_decimal_text(priced[_TOTAL_ENERGY])}'
           f',"total_energy_cost":{_price_json(priced[_TOTAL_ENERGY_COST])}'
           f',"total_time":{_decimal_text(priced[_TOTAL_TIME])}'
           f',"total_time_cost":{_price_json(priced[_TOTAL_TIME_COST])}'
           f',"total_parking_time":{_decimal_text(priced[_TOTAL_PARKING_TIME])}'
           f',"total_parking_cost":{_price_json(priced[_TOTAL_PARKING_COST])}'
           f',"total_reservation_cost":{_price_json(priced[_TOTAL_RESERVATION_COST])}')
    if remark is not None:
        append(',"remark":' + _quote(remark))
    append(',"last_updated":' + _datetime_json(updated) + "}")
    return "".join(out), start, end, updated


#: Positions in ``engine.price_rows``' result (engine._RESULT_FIELDS).
(_TOTAL_COST, _TOTAL_FIXED_COST, _TOTAL_ENERGY_COST, _TOTAL_TIME_COST, _TOTAL_PARKING_COST, _TOTAL_RESERVATION_COST,
 _TOTAL_ENERGY, _TOTAL_TIME, _TOTAL_PARKING_TIME) = range(5, 14)


def _negate(price: Price | None) -> Price | None:
    if price is None:
        return None
    return Price(
        excl_vat=-price.excl_vat,
        incl_vat=None if price.incl_vat is None else -price.incl_vat,
    )


def credit_cdr(original: Cdr, *, id: str, last_updated: datetime) -> Cdr:
    """The Credit CDR of an issued CDR (mod_cdrs "Credit CDRs"): a new ``id``, ``credit``
    true, ``credit_reference_id`` = the original's id, and otherwise all the data of the
    original, where "Only the values in the total_cost field SHALL contain the negative
    amounts of the original CDR". The other total_*_cost fields, quantities and charging
    periods stay as they were: sum credits by ``total_cost`` (or by the ``credit`` flag)."""
    if original.credit:
        raise ValueError(f"CDR {original.id} is itself a credit CDR")
    return original.model_copy(
        update={
            "id": id,
            "credit": True,
            "credit_reference_id": original.id,
            "last_updated": last_updated,
            "total_cost": _negate(original.total_cost),
        }
    )


def reprice_cdr(cdr: Cdr, tariff: Tariff, *, time_zone: str) -> PricedSession:
    """Price a given CDR's periods with ``tariff`` (rule 3: periods taken as given,
    restrictions at each period's start; rule 10: this tariff for every period, whatever
    their tariff_id). Findings: the tariff's validity excludes the session, a period spans
    a price boundary. A tariff in another currency than the CDR is an error."""
    if tariff.currency != cdr.currency:
        raise CurrencyMismatch(f"CDR {cdr.id} is in {cdr.currency}, the tariff {tariff.id} in {tariff.currency}")
    priced = price_periods(
        cdr.charging_periods,
        tariff,
        time_zone=time_zone,
        session_start=cdr.start_date_time,
        session_end=cdr.end_date_time,
        check_boundaries=True,
    )
    priced.findings.extend(total_differences(cdr, priced))
    return priced


def total_differences(cdr: Cdr, priced: PricedSession) -> list[Finding]:
    """Where the CDR's own totals differ from ours (the CDR's values as stated)."""
    findings = []
    for name, ours in priced.totals().items():
        theirs = getattr(cdr, name)
        if theirs is None:
            continue
        if isinstance(ours, Price):
            pairs = [("excl_vat", theirs.excl_vat, ours.excl_vat)]
            if theirs.incl_vat is not None:
                pairs.append(("incl_vat", theirs.incl_vat, ours.incl_vat))
            for part, a, b in pairs:
                if a != b:
                    findings.append(Finding("total_differs", f"{name}.{part}: CDR says {a}, we price {b}"))
        elif theirs != ours:
            findings.append(Finding("total_differs", f"{name}: CDR says {theirs}, the periods give {ours}"))
    return findings


def repriced_cdr(cdr: Cdr, priced: PricedSession) -> Cdr:
    """``cdr`` with its totals replaced by ``priced``'s (what `chargeledger price` prints)."""
    return cdr.model_copy(update={**priced.totals()})


__all__ = ["build_cdr", "credit_cdr", "price_session", "reprice_cdr", "repriced_cdr"]
