"""Explain amount mismatches by re-pricing the partner's CDR with the contract's tariff.

Only the ``amount_mismatch`` lines are re-priced (a handful per period), so this stays
cheap at a million CDRs. The tariff engine is pricing.cdr.reprice_cdr (docs/ocpi-pricing.md
rule 3: the partner's charging periods are taken as given; rule 10: the contract's tariff
prices every period). The verdict per line, ``reprice_agrees_with``:

* ``us``: our engine's total for the partner's periods equals our CDR's total (within the
  contract's amount tolerance, excl and incl VAT) and not the partner's;
* ``partner``: it equals the partner's total and not ours;
* ``both`` / ``neither``;
* ``not_repriced``: no tariff in the contract, no OCPI JSON for the partner's CDR (a CSV
  import has no charging periods), or the engine refused it (the reason is in the detail).

``reprice_detail`` is JSON: the re-priced totals, the engine's breakdown (which element
priced which part of which dimension) and its findings.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Mapping, Sequence

import pandas as pd

from settlement.money import money_to_units
from settlement.reconcile import AMOUNT_MISMATCH, Reconciliation


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def reprice_partner_cdr(doc: str | Mapping[str, Any], tariff: Mapping[str, Any], time_zone: str):
    """The engine's PricedSession for one partner CDR (OCPI JSON) and tariff (OCPI JSON)."""
    from pricing.cdr import reprice_cdr
    from schemas.ocpi import Cdr, Tariff, ocpi_loads

    data = ocpi_loads(doc) if isinstance(doc, str) else doc
    return reprice_cdr(Cdr.model_validate(data), Tariff.model_validate(tariff), time_zone=time_zone)


def explain_amount_mismatches(rec: Reconciliation, partner_docs: Sequence[str | None] | Mapping[int, str | None]) -> int:
    """Add re-pricing columns to ``rec.lines`` (in place); returns how many were re-priced.

    ``partner_docs[i]`` is the OCPI JSON of row ``i`` of the partner frame (``partner_row``).
    """
    lines = rec.lines
    for c in ("reprice_excl", "reprice_incl"):
        if c not in lines.columns:
            lines[c] = pd.array([pd.NA] * len(lines), dtype="Int64")
    for c in ("reprice_agrees_with", "reprice_detail"):
        if c not in lines.columns:
            lines[c] = pd.Series([None] * len(lines), dtype=object, index=lines.index)
    contract = rec.contract
    tol = money_to_units(contract.tolerances.amount)
    done = 0
    for idx in lines.index[lines["cls"] == AMOUNT_MISMATCH]:
        row = lines.loc[idx]
        prow = row["partner_row"]
        doc = None if pd.isna(prow) else partner_docs[int(prow)] if len(partner_docs) > int(prow) else None
        if contract.tariff is None:
            lines.at[idx, "reprice_agrees_with"] = "not_repriced"
            lines.at[idx, "reprice_detail"] = json.dumps({"reason": f"contract {contract.id} names no tariff"})
            continue
        if doc is None:
            lines.at[idx, "reprice_agrees_with"] = "not_repriced"
            lines.at[idx, "reprice_detail"] = json.dumps(
                {"reason": "the partner's CDR has no OCPI JSON (charging periods) to re-price"})
            continue
        try:
            priced = reprice_partner_cdr(doc, contract.tariff, contract.time_zone)
        except ImportError as exc:
            lines.at[idx, "reprice_agrees_with"] = "not_repriced"
            lines.at[idx, "reprice_detail"] = json.dumps({"reason": f"tariff engine not available: {exc}"})
            continue
        except Exception as exc:  # the engine refused this CDR/tariff: say why, do not crash
            lines.at[idx, "reprice_agrees_with"] = "not_repriced"
            lines.at[idx, "reprice_detail"] = json.dumps({"reason": f"{type(exc).__name__}: {exc}"})
            continue
        excl = money_to_units(priced.total_cost.excl_vat)
        incl_v = priced.total_cost.incl_vat
        incl = money_to_units(incl_v if incl_v is not None else priced.total_cost.excl_vat)
        agrees_us = abs(excl - int(row["our_cost_excl"])) <= tol and abs(incl - int(row["our_cost_incl"])) <= tol
        agrees_partner = (abs(excl - int(row["partner_cost_excl"])) <= tol
                          and abs(incl - int(row["partner_cost_incl"])) <= tol)
        verdict = {(True, False): "us", (False, True): "partner", (True, True): "both"}.get(
            (agrees_us, agrees_partner), "neither")
        lines.at[idx, "reprice_excl"] = excl
        lines.at[idx, "reprice_incl"] = incl
        lines.at[idx, "reprice_agrees_with"] = verdict
        lines.at[idx, "reprice_detail"] = json.dumps(_jsonable({
            "total_cost": {"excl_vat": priced.total_cost.excl_vat, "incl_vat": incl_v},
            "tariff_id": priced.tariff_id,
            "breakdown": [ln.as_dict() for ln in priced.lines],
            "findings": [str(f) for f in priced.findings],
        }))
        done += 1
    rec.repriced = True
    return done
