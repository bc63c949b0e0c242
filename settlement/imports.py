"""Partner data in: partner CDRs and partner invoices from files. Reading only, no database.

Every reader validates the *whole* file first and raises :class:`ImportFailed` listing
every bad row as ``file:line: field: message``; only a file without errors comes back, and
settlement/repository.py writes it in one transaction. So a file with errors is never
half imported.

Partner CDRs (:func:`read_partner_cdrs`, format from the suffix or ``fmt``):

* ``.json``: an OCPI 2.2.1 CDR object, an array of them, or an OCPI response envelope
  whose ``data`` is either. Each CDR is validated with the OCPI model (schemas/ocpi.py
  ``Cdr``); the line of an array element is the line where the element starts.
* ``.jsonl`` / ``.ndjson``: one CDR object per line (blank lines skipped).
* ``.csv``: header row, then one CDR per row, columns :data:`CDR_CSV_COLUMNS` (the
  optional ones may be absent or empty). Numbers are plain decimals (``12.3456``), times
  RFC 3339 (``2026-10-05T08:00:00Z``), ``credit`` is ``true``/``false`` (or 1/0, empty =
  false). The header is line 1, the first CDR line 2.

Partner invoices (:func:`read_invoices`):

* ``.csv``: columns :data:`INVOICE_CSV_COLUMNS`: one invoiced CDR per row.
* ``.json`` / ``.jsonl``: OCPI 2.3.0 InvoiceReconciliationRecord objects
  (mod_invoice_reconciliation.asciidoc, "InvoiceReconciliationRecord Object"): the record's
  ``country_code``/``party_id`` own it (the invoice issuer), ``invoice_id`` names the
  invoice, ``cdrs`` (one or more) are the invoiced CDR ids; each becomes one invoice line.
  The spec types ``cdrs`` as CiString(36); we accept up to 39 so credit CDR ids
  (mod_cdrs: up to 39) can be invoiced.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd

from settlement.contracts import ContractError, parse_party, party_key
from settlement.frames import FieldError, cdr_row, frame_from_rows, parse_datetime
from settlement.money import PrecisionError, money_to_units, to_decimal

#: CSV columns of a partner CDR file: (column, required, meaning).
CDR_CSV_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("id", True, "CDR.id"),
    ("country_code", True, "CDR.country_code (the CPO)"),
    ("party_id", True, "CDR.party_id (the CPO)"),
    ("emsp_country_code", True, "CDR.cdr_token.country_code"),
    ("emsp_party_id", True, "CDR.cdr_token.party_id"),
    ("evse_id", True, "CDR.cdr_location.evse_id"),
    ("start_date_time", True, "CDR.start_date_time"),
    ("end_date_time", True, "CDR.end_date_time"),
    ("currency", True, "CDR.currency"),
    ("total_cost_excl_vat", True, "CDR.total_cost.excl_vat"),
    ("total_cost_incl_vat", False, "CDR.total_cost.incl_vat"),
    ("total_energy", True, "CDR.total_energy (kWh)"),
    ("credit", False, "CDR.credit"),
    ("credit_reference_id", False, "CDR.credit_reference_id"),
)

#: CSV columns of a partner invoice file: (column, required, meaning).
INVOICE_CSV_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("invoice_id", True, "the invoice's identifier"),
    ("cdr_id", True, "an invoiced CDR.id"),
    ("country_code", False, "CDR.country_code of that CDR's CPO (default: the contract's CPO)"),
    ("party_id", False, "CDR.party_id of that CDR's CPO"),
    ("amount_excl_vat", False, "invoiced amount for this CDR, excl VAT"),
    ("amount_incl_vat", False, "invoiced amount for this CDR, incl VAT"),
    ("currency", False, "ISO 4217 currency of the amounts"),
    ("issued_at", False, "invoice date-time (RFC 3339)"),
)

# CDR JSON path -> CSV column, so CSV errors name the CSV column.
_CSV_FIELD = {
    "id": "id", "country_code": "country_code", "party_id": "party_id",
    "cdr_token.country_code": "emsp_country_code", "cdr_token.party_id": "emsp_party_id",
    "cdr_location.evse_id": "evse_id", "start_date_time": "start_date_time",
    "end_date_time": "end_date_time", "currency": "currency",
    "total_cost.excl_vat": "total_cost_excl_vat", "total_cost.incl_vat": "total_cost_incl_vat",
    "total_energy": "total_energy", "credit": "credit", "credit_reference_id": "credit_reference_id",
}

MAX_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ImportFailed(ValueError):
    """A partner file with bad rows; nothing of it is imported."""

    def __init__(self, errors: list[RowError], total: int | None = None):
        self.errors = errors
        total = len(errors) if total is None else total
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {total - 20} more" if total > 20 else ""
        first = errors[0].file if errors else "?"
        super().__init__(f"{first}: {total} bad row(s), nothing imported:\n{shown}{more}")


@dataclass
class PartnerCdrs:
    """A validated partner CDR file: the CDR frame plus, per row, its line and JSON."""

    source: str
    sha256: str
    frame: pd.DataFrame
    lines: list[int]
    docs: list[str | None] = field(default_factory=list)  # OCPI JSON text per row (None for CSV)


@dataclass
class InvoiceLines:
    source: str
    sha256: str
    frame: pd.DataFrame  # invoice_id, cdr_id, cpo, issuer, record_id, amount_excl_vat, amount_incl_vat, currency, issued_at
    lines: list[int]


class _Errors:
    def __init__(self, file: str):
        self.file = file
        self.items: list[RowError] = []
        self.total = 0

    def add(self, line: int, field_: str, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(self.file, line, field_, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportFailed(self.items, self.total)


def _format_of(path: Path, fmt: str | None) -> str:
    f = (fmt or path.suffix.lstrip(".")).lower()
    if f in ("ndjson", "jsonl"):
        return "jsonl"
    if f in ("json", "csv"):
        return f
    raise ValueError(f"{path}: unknown format {f!r} (use .json, .jsonl/.ndjson or .csv)")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _json_objects(text: str, errors: _Errors) -> Iterator[tuple[int, Any, str | None]]:
    """(line, value, source text) of each element of a JSON document: an object, an array,
    or an OCPI response envelope ``{"data": ...}`` (no source text then). Lines are where
    each element starts."""
    dec = json.JSONDecoder(parse_float=Decimal)
    i = len(text) - len(text.lstrip())
    if i >= len(text):
        errors.add(1, "(file)", "empty file")
        return
    if text[i] == "{":
        try:
            obj, _ = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            errors.add(exc.lineno, "(json)", exc.msg)
            return
        if isinstance(obj, dict) and "data" in obj and "id" not in obj:
            data = obj["data"]
            line = _line_of(text, text.find('"data"', i))
            for el in data if isinstance(data, list) else [data]:
                yield line, el, None  # an envelope: element lines are not tracked individually
            return
        yield _line_of(text, i), obj, text[i:].strip()
        return
    if text[i] != "[":
        errors.add(_line_of(text, i), "(json)", "expected a JSON object or array")
        return
    i += 1
    ws = " \t\r\n"
    line, seen = 1, 0  # line number at text position ``seen`` (counted incrementally: O(n))

    def line_at(pos: int) -> int:
        nonlocal line, seen
        line += text.count("\n", seen, pos)
        seen = pos
        return line

    while True:
        while i < len(text) and text[i] in ws:
            i += 1
        if i < len(text) and text[i] == "]":
            return
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            errors.add(exc.lineno, "(json)", exc.msg)
            return
        yield line_at(i), obj, text[i:end]
        i = end
        while i < len(text) and text[i] in ws:
            i += 1
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] == "]":
            return
        errors.add(line_at(i), "(json)", "expected ',' or ']'")
        return


def _jsonl_objects(text: str, errors: _Errors) -> Iterator[tuple[int, Any, str | None]]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw, parse_float=Decimal), raw.strip()
        except json.JSONDecodeError as exc:
            errors.add(n, "(json)", exc.msg)


def _csv_rows(text: str, path: Path, columns, errors: _Errors) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c, req, _ in columns if req and c not in header]
    if missing:
        errors.add(1, ",".join(missing), "required column(s) missing from the header")
        return
    for row in reader:
        if None in row:
            errors.add(reader.line_num, "(row)", "more fields than the header has")
            continue
        yield reader.line_num, {k: (v.strip() if isinstance(v, str) else "") for k, v in row.items()}


def _validate_ocpi_cdr(doc: Any) -> tuple[str, str] | None:
    """First error of the OCPI 2.2.1 Cdr model (schemas/ocpi.py) as (field, message)."""
    try:
        from schemas.ocpi import Cdr
    except ImportError:  # pragma: no cover - the model is part of this code base
        return None
    import pydantic

    try:
        Cdr.model_validate(doc)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(cdr)"
        return loc, err["msg"]
    return None


def _csv_cdr_doc(row: Mapping[str, str]) -> dict[str, Any]:
    def opt(name: str) -> str | None:
        v = row.get(name, "")
        return v if v != "" else None

    credit_text = (row.get("credit") or "").lower()
    if credit_text in ("", "false", "0", "no"):
        credit = False
    elif credit_text in ("true", "1", "yes"):
        credit = True
    else:
        raise FieldError("credit", f"must be true or false, got {row.get('credit')!r}")
    total_cost: dict[str, Any] = {"excl_vat": opt("total_cost_excl_vat")}
    if opt("total_cost_incl_vat") is not None:
        total_cost["incl_vat"] = opt("total_cost_incl_vat")
    return {
        "id": opt("id"), "country_code": opt("country_code"), "party_id": opt("party_id"),
        "cdr_token": {"country_code": opt("emsp_country_code"), "party_id": opt("emsp_party_id")},
        "cdr_location": {"evse_id": opt("evse_id")},
        "start_date_time": opt("start_date_time"), "end_date_time": opt("end_date_time"),
        "currency": opt("currency"), "total_cost": total_cost, "total_energy": opt("total_energy"),
        "credit": credit, "credit_reference_id": opt("credit_reference_id"),
    }


def _read(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return data.decode("utf-8-sig"), hashlib.sha256(data).hexdigest()


def read_partner_cdrs(path: str | Path, *, fmt: str | None = None,
                      progress: Callable[[int], None] | None = None) -> PartnerCdrs:
    """Validate and read a partner CDR file (module docstring); raises :class:`ImportFailed`.

    ``progress(n)`` is called every 100 000 rows read (long files).
    """
    path = Path(path)
    kind = _format_of(path, fmt)
    text, sha = _read(path)
    errors = _Errors(str(path))
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    docs: list[str | None] = []
    if kind == "csv":
        for line, row in _csv_rows(text, path, CDR_CSV_COLUMNS, errors):
            if progress and line % 100_000 == 0:
                progress(line)
            try:
                rows.append(cdr_row(_csv_cdr_doc(row)))
                lines.append(line)
                docs.append(None)
            except FieldError as exc:
                errors.add(line, _CSV_FIELD.get(exc.field, exc.field), exc.message)
    else:
        from schemas.ocpi import ocpi_dumps

        objects = _json_objects(text, errors) if kind == "json" else _jsonl_objects(text, errors)
        for n, (line, doc, raw) in enumerate(objects, start=1):
            if progress and n % 100_000 == 0:
                progress(n)
            bad = _validate_ocpi_cdr(doc)
            if bad:
                errors.add(line, *bad)
                continue
            try:
                rows.append(cdr_row(doc))
            except FieldError as exc:
                errors.add(line, exc.field, exc.message)
                continue
            lines.append(line)
            docs.append(raw if raw is not None else ocpi_dumps(doc))  # the partner's own bytes
    errors.raise_if_any()
    return PartnerCdrs(str(path), sha, frame_from_rows(rows), lines, docs)


def _opt_money(value: Any, field_: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        money_to_units(value)
        return to_decimal(value)
    except (ValueError, PrecisionError) as exc:
        raise FieldError(field_, str(exc)) from None


def _cistring(value: Any, field_: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field_, f"must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise FieldError(field_, f"longer than {max_len} characters")
    return value


def read_invoices(path: str | Path, *, fmt: str | None = None, issuer: str | None = None) -> InvoiceLines:
    """Validate and read partner invoice lines (CSV, or OCPI 2.3.0 Invoice Reconciliation
    records as JSON / JSON lines); raises :class:`ImportFailed` listing every bad row."""
    path = Path(path)
    kind = _format_of(path, fmt)
    text, sha = _read(path)
    errors = _Errors(str(path))
    out: list[dict[str, Any]] = []
    lines: list[int] = []
    if kind == "csv":
        for line, row in _csv_rows(text, path, INVOICE_CSV_COLUMNS, errors):
            try:
                cpo = None
                if row.get("country_code") or row.get("party_id"):
                    try:
                        cpo = party_key(*parse_party(f"{row.get('country_code', '')}*{row.get('party_id', '')}"))
                    except ContractError as exc:
                        raise FieldError("country_code/party_id", str(exc)) from None
                currency = row.get("currency") or None
                if currency is not None and (len(currency) != 3 or not currency.isalpha()):
                    raise FieldError("currency", f"not an ISO 4217 code: {currency!r}")
                issued = row.get("issued_at") or None
                out.append({
                    "invoice_id": _cistring(row.get("invoice_id"), "invoice_id", 255),
                    "cdr_id": _cistring(row.get("cdr_id"), "cdr_id", 39),
                    "cpo": cpo, "issuer": issuer, "record_id": None,
                    "amount_excl_vat": _opt_money(row.get("amount_excl_vat"), "amount_excl_vat"),
                    "amount_incl_vat": _opt_money(row.get("amount_incl_vat"), "amount_incl_vat"),
                    "currency": currency.upper() if currency else None,
                    "issued_at": None if issued is None else parse_datetime(issued, "issued_at"),
                })
                lines.append(line)
            except FieldError as exc:
                errors.add(line, exc.field, exc.message)
    else:
        objects = _json_objects(text, errors) if kind == "json" else _jsonl_objects(text, errors)
        for line, rec, _raw in objects:
            try:
                if not isinstance(rec, dict):
                    raise FieldError("(record)", "an Invoice Reconciliation record must be a JSON object")
                owner = party_key(_cistring(rec.get("country_code"), "country_code", 2),
                                  _cistring(rec.get("party_id"), "party_id", 3))
                record_id = _cistring(rec.get("id"), "id", 36)
                invoice_id = _cistring(rec.get("invoice_id"), "invoice_id", 255)
                issued = parse_datetime(rec.get("last_updated"), "last_updated") \
                    if rec.get("last_updated") is not None else None
                if issued is None:
                    raise FieldError("last_updated", "missing")
                cdrs = rec.get("cdrs")
                if not isinstance(cdrs, list) or not cdrs:
                    raise FieldError("cdrs", "must be a list of one or more CDR ids")
                ids = [_cistring(c, f"cdrs[{n}]", 39) for n, c in enumerate(cdrs)]
            except FieldError as exc:
                errors.add(line, exc.field, exc.message)
                continue
            for cdr_id in ids:
                out.append({"invoice_id": invoice_id, "cdr_id": cdr_id, "cpo": None,
                            "issuer": issuer or owner, "record_id": record_id,
                            "amount_excl_vat": None, "amount_incl_vat": None, "currency": None,
                            "issued_at": issued})
                lines.append(line)
    errors.raise_if_any()
    cols = ["invoice_id", "cdr_id", "cpo", "issuer", "record_id", "amount_excl_vat",
            "amount_incl_vat", "currency", "issued_at"]
    frame = pd.DataFrame.from_records(out, columns=cols).astype(object) if out else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in cols})
    return InvoiceLines(str(path), sha, frame, lines)
