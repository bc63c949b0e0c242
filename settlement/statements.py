"""Settlement statements: what each party owes the other for a period. Pure (no I/O but
the exporters, which write the file they are given).

Input per contract: the reconciliation summary (counts and exact money per class, from
our side's CDRs). Settled CDRs are the classes in :data:`SETTLED_CLASSES` (the partner
agrees, or only the invoice is missing; credited pairs net to zero); every other class is
listed as *disputed* with both sides' money and is not in the totals.

Rounding (DESIGN.md "Money", docs/ocpi-pricing.md rule 9): per contract, the net total is
the exact sum of the settled CDRs' ``total_cost.excl_vat`` rounded to the currency's ISO
4217 minor unit with ROUND_HALF_UP; VAT is then rounded separately:

* ``from_cdr``: VAT = round(sum incl_vat - sum excl_vat);
* ``rate``: VAT = round(net x vat_rate / 100);
* ``reverse_charge``: VAT = 0 (the customer accounts for it).

total incl VAT = net + VAT. Money flows from the eMSP to the CPO whatever the billing
direction (direct: the CPO invoices; reverse: the eMSP self-bills, OCPI 2.3.0
mod_invoice_reconciliation "Flow and Lifecycle"). A party's *net position* in a currency
is what it receives as CPO minus what it pays as eMSP, incl VAT; for a pair the two
positions are opposite, for a hub the positions of all its parties sum to zero.

A statement's content is canonical JSON; its SHA-256 is the content hash. Issued
statements are immutable (storage: triggers); a correction is a new statement whose
``corrects`` names the old one.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping

from settlement.contracts import Contract, VatTreatment
from settlement.money import round_to_minor_unit
from settlement.reconcile import CLASSES, CREDITED, DELIVERED_NOT_INVOICED, MATCHED

SETTLED_CLASSES: tuple[str, ...] = (MATCHED, DELIVERED_NOT_INVOICED, CREDITED)
DISPUTED_CLASSES: tuple[str, ...] = tuple(c for c in CLASSES if c not in SETTLED_CLASSES)


@dataclass(frozen=True)
class ClassTotals:
    count: int
    our_excl_vat: Decimal
    our_incl_vat: Decimal
    partner_excl_vat: Decimal
    partner_incl_vat: Decimal


@dataclass(frozen=True)
class ContractPeriod:
    """One contract's reconciled period: money per class (exact, 4 decimals)."""

    contract: Contract
    period: str
    classes: Mapping[str, ClassTotals]
    run_id: str | None = None

    @classmethod
    def from_summary(cls, contract: Contract, period: str, summary: Iterable[Mapping[str, Any]],
                     run_id: str | None = None) -> "ContractPeriod":
        """From :meth:`Reconciliation.summary` records or stored ``settlement_run_classes``."""
        classes = {}
        for r in summary:
            name = r.get("class", r.get("cls"))
            classes[name] = ClassTotals(int(r["count"]), Decimal(r["our_excl_vat"]), Decimal(r["our_incl_vat"]),
                                        Decimal(r["partner_excl_vat"]), Decimal(r["partner_incl_vat"]))
        return cls(contract, period, classes, run_id)


@dataclass(frozen=True)
class ContractAmounts:
    """The rounded amounts of one contract's settled CDRs (net first, VAT separately)."""

    count: int
    net_excl_vat: Decimal
    vat: Decimal
    total_incl_vat: Decimal


def settle_contract(cp: ContractPeriod) -> ContractAmounts:
    """Rounded net, VAT and total of the settled classes (module docstring)."""
    c = cp.contract
    settled = [cp.classes[k] for k in SETTLED_CLASSES if k in cp.classes]
    count = sum(t.count for t in settled)
    excl = sum((t.our_excl_vat for t in settled), Decimal(0))
    incl = sum((t.our_incl_vat for t in settled), Decimal(0))
    net = round_to_minor_unit(excl, c.currency)
    if c.vat is VatTreatment.FROM_CDR:
        vat = round_to_minor_unit(incl - excl, c.currency)
    elif c.vat is VatTreatment.RATE:
        vat = round_to_minor_unit(net * c.vat_rate / Decimal(100), c.currency)
    else:
        vat = round_to_minor_unit(Decimal(0), c.currency)
    return ContractAmounts(count, net, vat, net + vat)


def _s(d: Decimal) -> str:
    return format(d, "f")


def build_statement(
    kind: str,
    party: str,
    counterparty: str | None,
    period: str,
    contract_periods: list[ContractPeriod],
    *,
    corrects: str | None = None,
) -> dict[str, Any]:
    """The statement content (JSON-ready, money as strings). ``kind`` is ``pair`` (party and
    counterparty, all their contracts) or ``hub`` (party is the hub, all its contracts)."""
    if kind not in ("pair", "hub"):
        raise ValueError("kind is 'pair' or 'hub'")
    contracts = []
    positions: dict[tuple[str, str], dict[str, Any]] = {}

    def pos(currency: str, p: str) -> dict[str, Any]:
        zero = round_to_minor_unit(Decimal(0), currency)  # "0.00" in EUR, "0" in JPY
        return positions.setdefault((currency, p), {
            "currency": currency, "party": p, "cdr_count": 0, "net_excl_vat": zero,
            "vat": zero, "total_incl_vat": zero, "net_position": zero})

    for cp in sorted(contract_periods, key=lambda x: x.contract.id):
        c = cp.contract
        if cp.period != period:
            raise ValueError(f"contract {c.id}: period {cp.period} is not the statement's {period}")
        amounts = settle_contract(cp)
        disputed = {
            k: {"count": cp.classes[k].count, "our_excl_vat": _s(cp.classes[k].our_excl_vat),
                "partner_excl_vat": _s(cp.classes[k].partner_excl_vat)}
            for k in DISPUTED_CLASSES if k in cp.classes and cp.classes[k].count
        }
        contracts.append({
            "id": c.id, "cpo": c.cpo, "emsp": c.emsp, "hub": c.hub, "currency": c.currency,
            "billing_direction": c.billing_direction.value, "invoice_issuer": c.issuer,
            "vat": c.vat.value, "vat_rate": None if c.vat_rate is None else _s(c.vat_rate),
            "run_id": cp.run_id, "settled_cdrs": amounts.count,
            "net_excl_vat": _s(amounts.net_excl_vat), "vat_amount": _s(amounts.vat),
            "total_incl_vat": _s(amounts.total_incl_vat), "disputed": disputed,
        })
        receiver = pos(c.currency, c.cpo)
        receiver["cdr_count"] += amounts.count
        receiver["net_excl_vat"] += amounts.net_excl_vat
        receiver["vat"] += amounts.vat
        receiver["total_incl_vat"] += amounts.total_incl_vat
        receiver["net_position"] += amounts.total_incl_vat
        pos(c.currency, c.emsp)["net_position"] -= amounts.total_incl_vat
    totals = []
    for key in sorted(positions):
        p = positions[key]
        totals.append({k: (_s(v) if isinstance(v, Decimal) else v) for k, v in p.items()})
    return {
        "kind": kind, "party": party, "counterparty": counterparty, "period": period,
        "corrects": corrects, "contracts": contracts, "totals": totals,
    }


def canonical_json(content: Mapping[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a statement's content."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- exports


def statement_table(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statement as flat rows (section totals / contract / disputed), Decimal money."""
    rows: list[dict[str, Any]] = []
    base = {"period": content["period"], "contract": None, "class": None, "currency": None, "party": None,
            "count": None, "net_excl_vat": None, "vat": None, "total_incl_vat": None, "net_position": None,
            "our_excl_vat": None, "partner_excl_vat": None}
    for t in content["totals"]:
        rows.append({**base, "section": "position", "currency": t["currency"], "party": t["party"],
                     "count": t["cdr_count"], "net_excl_vat": Decimal(t["net_excl_vat"]), "vat": Decimal(t["vat"]),
                     "total_incl_vat": Decimal(t["total_incl_vat"]), "net_position": Decimal(t["net_position"])})
    for c in content["contracts"]:
        rows.append({**base, "section": "contract", "contract": c["id"], "currency": c["currency"],
                     "party": c["cpo"], "count": c["settled_cdrs"], "net_excl_vat": Decimal(c["net_excl_vat"]),
                     "vat": Decimal(c["vat_amount"]), "total_incl_vat": Decimal(c["total_incl_vat"])})
        for k, d in c["disputed"].items():
            rows.append({**base, "section": "disputed", "contract": c["id"], "class": k, "currency": c["currency"],
                         "count": d["count"], "our_excl_vat": Decimal(d["our_excl_vat"]),
                         "partner_excl_vat": Decimal(d["partner_excl_vat"])})
    return [{"section": r.pop("section"), **r} for r in rows]


def export_csv(content: Mapping[str, Any], path: str | Path) -> None:
    rows = statement_table(content)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["section"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def export_parquet(content: Mapping[str, Any], path: str | Path) -> None:
    """Parquet with exact decimals (decimal128(18, 4)) for money, never floats."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = statement_table(content)
    money = ("net_excl_vat", "vat", "total_incl_vat", "net_position", "our_excl_vat", "partner_excl_vat")
    fields = [pa.field(c, pa.decimal128(18, 4) if c in money else (pa.int64() if c == "count" else pa.string()))
              for c in (rows[0] if rows else {"section": None})]
    schema = pa.schema(fields)
    table = pa.Table.from_pylist(rows, schema=schema)
    table = table.replace_schema_metadata({"statement": canonical_json(
        {k: content[k] for k in ("kind", "party", "counterparty", "period", "corrects")})})
    pq.write_table(table, str(path))


def render_html(content: Mapping[str, Any], *, statement_id: str = "(draft)", issued_at: str = "",
                digest: str | None = None) -> str:
    """A readable, self-contained HTML statement."""
    e = html.escape
    title = (f"Settlement statement {content['period']}: {content['party']}"
             + (f" / {content['counterparty']}" if content.get("counterparty") else " (hub)"))
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>body{{font-family:sans-serif;margin:2em;max-width:70em}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.3em .6em}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eee}"
        ".meta td{border:none;padding:.1em .6em}</style></head><body>",
        f"<h1>{e(title)}</h1><table class='meta'>",
        f"<tr><td>Statement</td><td>{e(statement_id)}</td></tr>",
        f"<tr><td>Issued at</td><td>{e(issued_at)}</td></tr>",
        f"<tr><td>Content SHA-256</td><td><code>{e(digest or content_hash(content))}</code></td></tr>",
    ]
    if content.get("corrects"):
        out.append(f"<tr><td>Corrects</td><td>{e(content['corrects'])}</td></tr>")
    out.append("</table><h2>Net positions</h2><p>Positive: the party receives; negative: it pays "
               "(incl VAT).</p><table><tr><th>Currency</th><th>Party</th><th>CDRs delivered</th>"
               "<th>Net excl VAT</th><th>VAT</th><th>Total incl VAT</th><th>Net position</th></tr>")
    for t in content["totals"]:
        out.append(f"<tr><td>{e(t['currency'])}</td><td>{e(t['party'])}</td><td class='n'>{t['cdr_count']}</td>"
                   f"<td class='n'>{e(t['net_excl_vat'])}</td><td class='n'>{e(t['vat'])}</td>"
                   f"<td class='n'>{e(t['total_incl_vat'])}</td><td class='n'><b>{e(t['net_position'])}</b></td></tr>")
    out.append("</table><h2>Contracts</h2><table><tr><th>Contract</th><th>CPO</th><th>eMSP</th><th>Currency</th>"
               "<th>Billing</th><th>VAT</th><th>Settled CDRs</th><th>Net excl VAT</th><th>VAT</th>"
               "<th>Total incl VAT</th></tr>")
    for c in content["contracts"]:
        vat = c["vat"] + (f" {c['vat_rate']}%" if c.get("vat_rate") else "")
        out.append(f"<tr><td>{e(c['id'])}</td><td>{e(c['cpo'])}</td><td>{e(c['emsp'])}</td><td>{e(c['currency'])}</td>"
                   f"<td>{e(c['billing_direction'])}</td><td>{e(vat)}</td><td class='n'>{c['settled_cdrs']}</td>"
                   f"<td class='n'>{e(c['net_excl_vat'])}</td><td class='n'>{e(c['vat_amount'])}</td>"
                   f"<td class='n'>{e(c['total_incl_vat'])}</td></tr>")
    out.append("</table>")
    disputed = [(c["id"], k, d) for c in content["contracts"] for k, d in c["disputed"].items()]
    if disputed:
        out.append("<h2>Disputed (not in the totals)</h2><table><tr><th>Contract</th><th>Class</th>"
                   "<th>Count</th><th>Ours excl VAT</th><th>Partner excl VAT</th></tr>")
        for cid, k, d in disputed:
            out.append(f"<tr><td>{e(cid)}</td><td>{e(k)}</td><td class='n'>{d['count']}</td>"
                       f"<td class='n'>{e(d['our_excl_vat'])}</td><td class='n'>{e(d['partner_excl_vat'])}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def export_html(content: Mapping[str, Any], path: str | Path, **kw: Any) -> None:
    Path(path).write_text(render_html(content, **kw), encoding="utf-8")
