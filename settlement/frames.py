"""The CDR frame: the column layout the reconciliation core works on.

One row per CDR, one column per fact the reconciliation needs (see :data:`CDR_COLUMNS`).
Money and energy are scaled ``int64`` (settlement/money.py explains why and how); times
are ``datetime64[ns, UTC]``; identities are strings. Both sides (our CDRs and the
partner's) are brought to this layout at the edge, by :func:`cdr_row` (one OCPI 2.2.1 CDR
JSON object) and :func:`cdr_frame` (many); the core never sees JSON or Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from settlement.contracts import party_key
from settlement.money import PrecisionError, energy_to_units, money_to_units

#: column -> dtype of a CDR frame.
CDR_COLUMNS: dict[str, str] = {
    "cdr_id": "object",  # CDR.id, CiString(39)
    "cpo": "object",  # CDR.country_code*party_id, the CPO that owns the CDR
    "emsp": "object",  # CDR.cdr_token.country_code*party_id, the eMSP of the token
    "evse_id": "object",  # CDR.cdr_location.evse_id
    "start_date_time": "datetime64[ns, UTC]",
    "end_date_time": "datetime64[ns, UTC]",
    "currency": "object",
    "cost_excl": "int64",  # total_cost.excl_vat, 1e-4 units
    "cost_incl": "int64",  # total_cost.incl_vat (excl_vat when absent), 1e-4 units
    "energy": "int64",  # total_energy, 1e-6 kWh
    "credit": "bool",
    "credit_reference_id": "object",
}


#: Bounds that keep the scaled int64 columns (and Numeric(18, 4/6) storage) exact.
MAX_MONEY_UNITS = 10**18  # 10^14 currency units at 1e-4
MAX_ENERGY_UNITS = 10**18  # 10^12 kWh at 1e-6


class FieldError(ValueError):
    """A CDR field that is missing or wrong; ``field`` is its dotted path in the CDR JSON."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _get(doc: Mapping[str, Any], path: str, required: bool = True) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur or cur[part] is None:
            if required:
                raise FieldError(path, "missing")
            return None
        cur = cur[part]
    return cur


def _str(doc: Mapping[str, Any], path: str, max_len: int, required: bool = True) -> str | None:
    v = _get(doc, path, required)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise FieldError(path, f"must be a non-empty string, got {v!r}")
    if len(v) > max_len:
        raise FieldError(path, f"longer than {max_len} characters")
    return v


def parse_datetime(value: Any, field: str) -> datetime:
    """OCPI DateTime (RFC 3339; no offset means UTC, types.asciidoc DateTime) as aware UTC."""
    if not isinstance(value, str):
        raise FieldError(field, f"must be an RFC 3339 date-time string, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(field, f"not a date-time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _money(doc: Mapping[str, Any], path: str, required: bool = True) -> int | None:
    v = _get(doc, path, required)
    if v is None:
        return None
    if isinstance(v, bool):
        raise FieldError(path, f"not a number: {v!r}")
    try:
        units = money_to_units(v)
    except PrecisionError as exc:
        raise FieldError(path, str(exc)) from None
    except ValueError as exc:
        raise FieldError(path, str(exc)) from None
    if abs(units) >= MAX_MONEY_UNITS:
        raise FieldError(path, f"{v} is out of range (|amount| < 10^14)")
    return units


def _energy(doc: Mapping[str, Any], path: str) -> int:
    v = _get(doc, path)
    if isinstance(v, bool):
        raise FieldError(path, f"not a number: {v!r}")
    try:
        units = energy_to_units(v)
    except ValueError as exc:
        raise FieldError(path, str(exc)) from None
    if abs(units) >= MAX_ENERGY_UNITS:
        raise FieldError(path, f"{v} kWh is out of range (< 10^12)")
    return units


def cdr_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One OCPI 2.2.1 CDR object (mod_cdrs.asciidoc, CDR Object) -> one CDR frame row.

    Checks the fields reconciliation relies on and raises :class:`FieldError` naming the
    first bad one. ``credit: true`` needs ``credit_reference_id`` (mod_cdrs "Credit CDRs").
    """
    if not isinstance(doc, Mapping):
        raise FieldError("(cdr)", f"a CDR must be a JSON object, got {type(doc).__name__}")
    cc = _str(doc, "country_code", 2)
    pid = _str(doc, "party_id", 3)
    cdr_id = _str(doc, "id", 39)
    start = parse_datetime(_get(doc, "start_date_time"), "start_date_time")
    end = parse_datetime(_get(doc, "end_date_time"), "end_date_time")
    if end < start:
        raise FieldError("end_date_time", "before start_date_time")
    token_cc = _str(doc, "cdr_token.country_code", 2)
    token_pid = _str(doc, "cdr_token.party_id", 3)
    evse_id = _str(doc, "cdr_location.evse_id", 48)
    currency = _str(doc, "currency", 3)
    if len(currency) != 3 or not currency.isalpha():
        raise FieldError("currency", f"not an ISO 4217 code: {currency!r}")
    excl = _money(doc, "total_cost.excl_vat")
    incl = _money(doc, "total_cost.incl_vat", required=False)
    energy = _energy(doc, "total_energy")
    credit = doc.get("credit")
    if credit is not None and not isinstance(credit, bool):
        raise FieldError("credit", f"must be true or false, got {credit!r}")
    credit_ref = _str(doc, "credit_reference_id", 39, required=False)
    if credit and not credit_ref:
        raise FieldError("credit_reference_id", "required for a credit CDR (credit: true)")
    return {
        "cdr_id": cdr_id,
        "cpo": party_key(cc, pid),
        "emsp": party_key(token_cc, token_pid),
        "evse_id": evse_id,
        "start_date_time": start,
        "end_date_time": end,
        "currency": currency.upper(),
        "cost_excl": excl,
        "cost_incl": excl if incl is None else incl,
        "energy": energy,
        "credit": bool(credit),
        "credit_reference_id": credit_ref,
    }


def empty_cdr_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in CDR_COLUMNS.items()})


def frame_from_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A CDR frame from rows as produced by :func:`cdr_row` (columns in canonical order)."""
    rows = list(rows)
    if not rows:
        return empty_cdr_frame()
    df = pd.DataFrame.from_records(rows, columns=list(CDR_COLUMNS))
    return conform(df)


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Check a CDR frame built elsewhere (benchmarks, the DB) against :data:`CDR_COLUMNS`,
    coercing only what is off (times to UTC ns, numbers to int64, credit to bool); string
    columns may be object or pandas string dtype."""
    missing = [c for c in CDR_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"CDR frame lacks columns {missing}")
    out = df[list(CDR_COLUMNS)]
    fixes = {}
    for c in ("start_date_time", "end_date_time"):
        if str(out[c].dtype) != "datetime64[ns, UTC]":
            fixes[c] = pd.to_datetime(out[c], utc=True).astype("datetime64[ns, UTC]")
    for c in ("cost_excl", "cost_incl", "energy"):
        if out[c].dtype != np.int64:
            fixes[c] = out[c].astype(np.int64)
    if out["credit"].dtype != bool:
        fixes["credit"] = out["credit"].fillna(False).astype(bool)
    if fixes:
        out = out.assign(**fixes)
    if not isinstance(out.index, pd.RangeIndex) or out.index.start != 0 or out.index.step != 1:
        out = out.reset_index(drop=True)
    return out


def cdr_frame(docs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A CDR frame from OCPI 2.2.1 CDR JSON objects (raises :class:`FieldError` on the first bad one)."""
    return frame_from_rows(cdr_row(d) for d in docs)
