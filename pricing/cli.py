"""``chargeledger price`` (re-price OCPI CDRs) and ``chargeledger tariff check`` (lint).

Exit codes: 0 all good; 1 some input could not be priced (price) or the tariff has
findings (tariff check); 2 the command itself cannot run (bad arguments, unreadable or
invalid tariff, unknown time zone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.ocpi import Cdr, Tariff, ocpi_dumps, ocpi_loads

from .cdr import reprice_cdr, repriced_cdr
from .engine import PricingError, cdr_period, explain
from .lint import lint_tariff
from .restrictions import UnknownTimeZone, zone_for
from .zones import NoSingleZone, zone_for_country


class InputError(Exception):
    """A clear, one-line reason why an input cannot be used."""


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first.get('msg')}{more}"


def load_tariff(path: str) -> Tariff:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read tariff {path}: {exc.strerror}") from exc
    try:
        data = ocpi_loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"tariff {path} is not valid JSON: {exc}") from exc
    try:
        return Tariff.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"tariff {path} is not an OCPI 2.2.1 Tariff: {_validation_reason(exc)}") from exc


def _cdr_from(data: Any, where: str) -> Cdr:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a CDR JSON object")
    periods = data.get("charging_periods")
    if not periods:
        raise InputError(f"{where}: CDR {data.get('id', '?')} has no charging periods; nothing to price")
    try:
        return Cdr.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{where}: not an OCPI 2.2.1 CDR: {_validation_reason(exc)}") from exc


def _read_cdrs(path: str) -> list[tuple[str, Any]]:
    """(where, parsed JSON or an InputError) per CDR: one object, or one per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    as_lines = path.endswith((".jsonl", ".ndjson"))
    if not as_lines:
        try:
            data = ocpi_loads(text)
        except json.JSONDecodeError as exc:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if len(lines) > 1 and lines[0].lstrip().startswith("{") and lines[0].rstrip().endswith("}"):
                as_lines = True
            else:
                raise InputError(f"{path} is not valid JSON: {exc}") from exc
        else:
            if isinstance(data, list):
                return [(f"{path}[{i}]", item) for i, item in enumerate(data)]
            return [(path, data)]
    out: list[tuple[str, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((f"{path}:{n}", ocpi_loads(line)))
        except json.JSONDecodeError as exc:
            out.append((f"{path}:{n}", InputError(f"{path}:{n}: not valid JSON: {exc}")))
    if not out:
        raise InputError(f"{path} holds no CDR")
    return out


def price_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="chargeledger price",
        description="Re-price OCPI 2.2.1 CDRs with a tariff: prints each CDR as our engine prices it "
        "(one JSON object per CDR, OCPI field names, totals with 4 decimals).",
    )
    parser.add_argument("--tariff", required=True, help="OCPI 2.2.1 Tariff JSON file")
    parser.add_argument(
        "--timezone",
        help="IANA time zone of the location (default: the zone of the CDR's country, when it has one)",
    )
    parser.add_argument("--explain", action="store_true", help="also print the breakdown as a table")
    parser.add_argument("cdrs", metavar="CDR.json|CDRS.jsonl", help="one CDR, a JSON array, or JSON lines")
    args = parser.parse_args(argv)

    try:
        tariff = load_tariff(args.tariff)
        if args.timezone:
            zone_for(args.timezone)
        inputs = _read_cdrs(args.cdrs)
    except (InputError, UnknownTimeZone) as exc:
        print(f"chargeledger price: {exc}", file=sys.stderr)
        return 2

    failures = 0
    for where, data in inputs:
        try:
            if isinstance(data, InputError):
                raise data
            cdr = _cdr_from(data, where)
            zone = args.timezone or zone_for_country(cdr.cdr_location.country)
            priced = reprice_cdr(cdr, tariff, time_zone=zone)
        except (InputError, PricingError, NoSingleZone, UnknownTimeZone) as exc:
            failures += 1
            reason = str(exc)
            if isinstance(exc, NoSingleZone):
                reason = f"{where}: {exc} (--timezone)"
            elif not reason.startswith(where):
                reason = f"{where}: {reason}"
            print(f"chargeledger price: {reason}", file=sys.stderr)
            continue
        out = repriced_cdr(cdr, priced).model_copy(
            update={"charging_periods": [cdr_period(p) for p in cdr.charging_periods], "tariffs": [tariff]}
        )
        print(out.model_dump_json(indent=None if len(inputs) > 1 else 2))
        for finding in priced.findings:
            print(f"warning: CDR {cdr.id}: {finding}", file=sys.stderr)
        if args.explain:
            print(f"\nCDR {cdr.id} priced with tariff {tariff.id} ({tariff.currency}, time zone {zone}):")
            print(explain(priced))
            print()
    return 1 if failures else 0


def tariff_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargeledger tariff", description="Tariff tools.")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="lint a tariff: what parses but will surprise someone")
    check.add_argument("tariff", metavar="TARIFF.json")
    check.add_argument("--json", action="store_true", help="findings as JSON lines")
    args = parser.parse_args(argv)

    try:
        tariff = load_tariff(args.tariff)
    except InputError as exc:
        print(f"chargeledger tariff: {exc}", file=sys.stderr)
        return 2
    findings = lint_tariff(tariff)
    if args.json:
        for f in findings:
            print(ocpi_dumps({"code": f.code, "element_index": f.element_index, "message": f.message}))
    else:
        for f in findings:
            print(f)
        if not findings:
            print(f"tariff {tariff.id}: no findings")
    return 1 if findings else 0
