"""Reconciliation core: our CDRs against a partner's, for one contract and period. Pure.

Input: two CDR frames (settlement/frames.py layout), the contract (tolerances, currency)
and optionally the partner's invoice lines (invoice id -> CDR id). Output: one *line* per
finding, such that every CDR on either side, and every invoice line that names no CDR,
appears in exactly one line with exactly one class (:data:`CLASSES`):

1. On each side first (a CDR's own side decides these):

   * ``duplicate``: the same CDR id delivered again (``country_code``/``party_id``/``id``
     is unique, mod_cdrs CDR Object), or another CDR of the *same session fingerprint*
     (EVSE, start within the start tolerance, energy within the energy tolerance) that is
     not a credit: the session was billed twice. The copy whose id the other side knows is
     kept; otherwise the earliest. A second credit for one original is a duplicate too.
   * ``credited``: a credit CDR (``credit: true``) and the original it names in
     ``credit_reference_id`` on the same side, both (mod_cdrs "Credit CDRs": the credit nets
     the original; a re-issued CDR is an ordinary new CDR). A credit whose original is not
     on that side (an earlier period) is an ordinary CDR with negative amounts.

2. The remaining CDRs are matched: first by CDR id (with the owning CPO), then by session
   fingerprint (same ``evse_id``, start within ``start_s``, energy within ``energy_kwh``),
   one-to-one, closest start first. Unmatched: ``missing_at_partner`` (only we have it) or
   ``missing_at_us`` (only the partner has it).

3. A matched pair is ``energy_mismatch`` (|delta total_energy| > energy tolerance), else
   ``duration_mismatch`` (|delta (end - start)| > duration tolerance), else
   ``amount_mismatch`` (|delta total_cost| excl or incl VAT > amount tolerance), else,
   when invoices are given and neither id is on any invoice, ``delivered_not_invoiced``,
   else ``matched``. Energy goes first because a different energy explains a different
   amount.

4. Invoice lines (OCPI 2.3.0 InvoiceReconciliationRecord ``cdrs``, or invoice CSV rows):
   a CDR id invoiced twice gives a ``duplicate`` line for the second; an invoiced id that
   no CDR on either side has gives ``invoiced_not_delivered``.

A CDR in another currency than the contract's is a :class:`CurrencyMismatch` error, never
converted. Money is compared as scaled int64 (settlement/money.py); Decimal comes back at
the edges (:meth:`Reconciliation.records`, :meth:`Reconciliation.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator

import numpy as np
import pandas as pd

from settlement.contracts import Contract, Period
from settlement.frames import CDR_COLUMNS, conform
from settlement.money import (
    ENERGY_SCALE,
    MONEY_SCALE,
    energy_to_units,
    money_to_units,
    units_to_energy,
    units_to_money,
)

MATCHED = "matched"
AMOUNT_MISMATCH = "amount_mismatch"
ENERGY_MISMATCH = "energy_mismatch"
DURATION_MISMATCH = "duration_mismatch"
MISSING_AT_PARTNER = "missing_at_partner"
MISSING_AT_US = "missing_at_us"
DUPLICATE = "duplicate"
CREDITED = "credited"
INVOICED_NOT_DELIVERED = "invoiced_not_delivered"
DELIVERED_NOT_INVOICED = "delivered_not_invoiced"

CLASSES: tuple[str, ...] = (
    MATCHED, AMOUNT_MISMATCH, ENERGY_MISMATCH, DURATION_MISMATCH, MISSING_AT_PARTNER,
    MISSING_AT_US, DUPLICATE, CREDITED, INVOICED_NOT_DELIVERED, DELIVERED_NOT_INVOICED,
)

#: Columns of the lines frame. Money columns are int64 1e-4 units (nullable), energy 1e-6 kWh.
LINE_COLUMNS: tuple[str, ...] = (
    "cls", "side", "match", "our_cdr_id", "partner_cdr_id", "invoice_id", "invoiced_cdr_id", "cpo", "emsp",
    "evse_id", "start_date_time", "our_cost_excl", "our_cost_incl", "partner_cost_excl",
    "partner_cost_incl", "our_energy", "partner_energy", "our_duration_s",
    "partner_duration_s", "our_row", "partner_row", "note",
)

_ACTIVE, _DUP, _CREDITED = 0, 1, 2


class ReconciliationError(ValueError):
    """Input that cannot be reconciled (the message says why)."""


class CurrencyMismatch(ReconciliationError):
    """A CDR in another currency than the contract's: never converted silently."""


def _key(df: pd.DataFrame, id_col: str = "cdr_id") -> pd.Series:
    return df["cpo"].astype(object) + "/" + df[id_col].astype(object)


def _ns(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype="datetime64[ns]").view(np.int64)


def check_currency(frame: pd.DataFrame, contract: Contract, side: str) -> None:
    """Raise :class:`CurrencyMismatch` naming the CDRs whose currency is not the contract's."""
    bad = frame.loc[frame["currency"] != contract.currency, ["cdr_id", "currency"]]
    if len(bad):
        shown = ", ".join(f"{i} ({c})" for i, c in bad.head(10).itertuples(index=False))
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise CurrencyMismatch(
            f"{len(bad)} {side} CDR(s) are not in the contract currency {contract.currency} "
            f"(contract {contract.id}): {shown}{more}; no currency is converted"
        )


def select_for_contract(frame: pd.DataFrame, contract: Contract, period: Period | None) -> pd.DataFrame:
    """The CDRs of this contract's pair (CPO owns it, eMSP's token) starting in ``period``.

    The period is [first instant of the month, first instant of the next) in UTC, by
    ``start_date_time`` (the session start decides the billing month).
    """
    return frame.loc[contract_mask(frame, contract, period)].reset_index(drop=True)


def contract_mask(frame: pd.DataFrame, contract: Contract, period: Period | None) -> np.ndarray:
    """Boolean mask of :func:`select_for_contract` (to subset data kept beside the frame)."""
    mask = (frame["cpo"] == contract.cpo) & (frame["emsp"] == contract.emsp)
    if period is not None:
        start = frame["start_date_time"]
        mask &= (start >= pd.Timestamp(period.start)) & (start < pd.Timestamp(period.end))
    return mask.to_numpy(dtype=bool)


@dataclass
class _SideStatus:
    status: np.ndarray  # int8: _ACTIVE / _DUP / _CREDITED
    note: np.ndarray  # object: reason for duplicate / credited


def _side_status(df: pd.DataFrame, keys: pd.Series, other_keys: pd.Index, tol) -> _SideStatus:
    """Duplicates and credit pairs within one side (module docstring, step 1)."""
    n = len(df)
    status = np.zeros(n, dtype=np.int8)
    note = np.full(n, None, dtype=object)
    if n == 0:
        return _SideStatus(status, note)
    key_arr = keys.to_numpy(dtype=object)

    # a) the same id again
    id_dup = keys.duplicated(keep="first").to_numpy()
    status[id_dup] = _DUP
    note[id_dup] = "same CDR id delivered again"

    # b) credit CDRs and their originals
    credit = df["credit"].to_numpy(dtype=bool)
    originals = np.flatnonzero(~credit & ~id_dup)
    credits = np.flatnonzero(credit & ~id_dup)
    if len(credits):
        orig_index = pd.Index(key_arr[originals])
        ref_keys = (df["cpo"].to_numpy(dtype=object)[credits] + "/"
                    + df["credit_reference_id"].to_numpy(dtype=object)[credits].astype(str))
        pos = orig_index.get_indexer(ref_keys)
        found = pos >= 0
        first = found & ~pd.Series(np.where(found, pos, -1 - np.arange(len(pos)))).duplicated().to_numpy()
        again = found & ~first
        c_first, c_again = credits[first], credits[again]
        o_rows = originals[pos[first]]
        status[c_first] = _CREDITED
        status[o_rows] = _CREDITED
        for c, o in zip(c_first, o_rows):
            note[c] = f"credits {df['cdr_id'].iat[o]}"
            note[o] = f"credited by {df['cdr_id'].iat[c]}"
        status[c_again] = _DUP
        for c in c_again:
            note[c] = f"second credit for {df['credit_reference_id'].iat[c]}"

    # c) the same session under another id (fingerprint), among active non-credit CDRs
    cand = np.flatnonzero((status == _ACTIVE) & ~credit)
    if len(cand) > 1:
        evse = df["evse_id"].to_numpy(dtype=object)[cand]
        start = _ns(df["start_date_time"])[cand]
        energy = df["energy"].to_numpy(dtype=np.int64)[cand]
        order = np.lexsort((start, evse))
        evse_o, start_o, energy_o = evse[order], start[order], energy[order]
        close = np.zeros(len(order), dtype=bool)
        close[1:] = ((evse_o[1:] == evse_o[:-1])
                     & (start_o[1:] - start_o[:-1] <= tol.start_s * 1_000_000_000)
                     & (np.abs(energy_o[1:] - energy_o[:-1]) <= energy_to_units(tol.energy_kwh)))
        if close.any():
            cluster = np.cumsum(~close)
            in_multi = np.zeros(len(order), dtype=bool)
            in_multi[1:] |= close[1:]
            in_multi[:-1] |= close[1:]
            rows = cand[order][in_multi]
            cl = cluster[in_multi]
            known = pd.Index(key_arr[rows]).isin(other_keys)
            sub = pd.DataFrame({"row": rows, "cl": cl, "unknown": ~known, "start": start[order][in_multi]})
            sub = sub.sort_values(["cl", "unknown", "start"], kind="stable")
            keep = sub.drop_duplicates("cl")
            kept_row = dict(zip(keep["cl"], keep["row"]))
            dups = sub.loc[sub["cl"].duplicated()]
            for r, c in zip(dups["row"], dups["cl"]):
                status[r] = _DUP
                note[r] = f"same session as {df['cdr_id'].iat[kept_row[c]]}"
    return _SideStatus(status, note)


def _fingerprint_pairs(a: pd.DataFrame, b: pd.DataFrame, tol) -> pd.DataFrame:
    """One-to-one pairs of rows of ``a`` and ``b`` (columns row, evse_id, start, energy) of
    the same session fingerprint, closest start first (greedy, repeated until stable)."""
    if a.empty or b.empty:
        return pd.DataFrame({"row_a": pd.Series(dtype=np.int64), "row_b": pd.Series(dtype=np.int64)})
    cand = a.merge(b, on="evse_id", suffixes=("_a", "_b"))
    d_start = np.abs(cand["start_a"].to_numpy() - cand["start_b"].to_numpy())
    d_energy = np.abs(cand["energy_a"].to_numpy() - cand["energy_b"].to_numpy())
    ok = (d_start <= tol.start_s * 1_000_000_000) & (d_energy <= energy_to_units(tol.energy_kwh))
    cand = cand.loc[ok, ["row_a", "row_b"]].assign(d_start=d_start[ok], d_energy=d_energy[ok])
    cand = cand.sort_values(["d_start", "d_energy", "row_a", "row_b"], kind="stable")
    chosen = []
    while not cand.empty:
        best = cand.drop_duplicates("row_a").drop_duplicates("row_b")
        # a pair is safe when it is the best for both of its rows
        best_b = cand.drop_duplicates("row_b")
        safe = best.merge(best_b[["row_a", "row_b"]], on=["row_a", "row_b"])
        if safe.empty:  # cannot happen with a total order, but never loop forever
            safe = best.head(1)
        chosen.append(safe[["row_a", "row_b"]])
        cand = cand[~cand["row_a"].isin(safe["row_a"]) & ~cand["row_b"].isin(safe["row_b"])]
    if not chosen:
        return pd.DataFrame({"row_a": pd.Series(dtype=np.int64), "row_b": pd.Series(dtype=np.int64)})
    return pd.concat(chosen, ignore_index=True)


def _side_lines(df: pd.DataFrame, rows: np.ndarray, side: str, cls: Any, note: Any) -> pd.DataFrame:
    """Lines for single CDRs of one side (missing, duplicate, credited)."""
    sub = df.iloc[rows]
    p = "our" if side == "ours" else "partner"
    o = "partner" if side == "ours" else "our"
    start_ns = _ns(sub["start_date_time"])
    dur = (_ns(sub["end_date_time"]) - start_ns) // 1_000_000_000
    n = len(rows)
    na_i = pd.array([pd.NA] * n, dtype="Int64")
    return pd.DataFrame({
        "cls": cls, "side": side, "match": None,
        f"{p}_cdr_id": sub["cdr_id"].to_numpy(dtype=object), f"{o}_cdr_id": None,
        "invoice_id": None, "invoiced_cdr_id": None, "cpo": sub["cpo"].to_numpy(dtype=object),
        "emsp": sub["emsp"].to_numpy(dtype=object), "evse_id": sub["evse_id"].to_numpy(dtype=object),
        "start_date_time": sub["start_date_time"].to_numpy(),
        f"{p}_cost_excl": pd.array(sub["cost_excl"].to_numpy(), dtype="Int64"),
        f"{p}_cost_incl": pd.array(sub["cost_incl"].to_numpy(), dtype="Int64"),
        f"{o}_cost_excl": na_i, f"{o}_cost_incl": na_i,
        f"{p}_energy": pd.array(sub["energy"].to_numpy(), dtype="Int64"), f"{o}_energy": na_i,
        f"{p}_duration_s": pd.array(dur, dtype="Int64"), f"{o}_duration_s": na_i,
        f"{p}_row": pd.array(rows, dtype="Int64"), f"{o}_row": na_i,
        "note": note,
    })


@dataclass
class Reconciliation:
    """The outcome: :attr:`lines` (one per finding, :data:`LINE_COLUMNS`) plus context."""

    contract: Contract
    period: str | None
    lines: pd.DataFrame
    our_count: int
    partner_count: int
    invoice_line_count: int
    repriced: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Counts and money per class, every class listed (Decimal amounts, 4 decimals).

        ``difference`` = partner_excl_vat - our_excl_vat. Money of a class is the sum over
        its lines of each side's total_cost (exact, unrounded).
        """
        g = self.lines.groupby("cls", observed=False)
        agg = pd.DataFrame({
            "count": g.size(),
            "our_excl": g["our_cost_excl"].sum(min_count=0),
            "our_incl": g["our_cost_incl"].sum(min_count=0),
            "partner_excl": g["partner_cost_excl"].sum(min_count=0),
            "partner_incl": g["partner_cost_incl"].sum(min_count=0),
        }).reindex(list(CLASSES), fill_value=0)
        out = pd.DataFrame({
            "class": list(CLASSES),
            "count": agg["count"].astype(int).to_numpy(),
            "our_excl_vat": [units_to_money(int(v)) for v in agg["our_excl"]],
            "partner_excl_vat": [units_to_money(int(v)) for v in agg["partner_excl"]],
        })
        out["difference"] = [p - o for o, p in zip(out["our_excl_vat"], out["partner_excl_vat"])]
        out["our_incl_vat"] = [units_to_money(int(v)) for v in agg["our_incl"]]
        out["partner_incl_vat"] = [units_to_money(int(v)) for v in agg["partner_incl"]]
        return out

    def records(self) -> Iterator[dict[str, Any]]:
        """Lines as dicts with Decimal money/energy and Python datetimes (the edge)."""
        money = ("our_cost_excl", "our_cost_incl", "partner_cost_excl", "partner_cost_incl",
                 "reprice_excl", "reprice_incl")
        energy = ("our_energy", "partner_energy")
        extra_cols = [c for c in self.lines.columns if c not in LINE_COLUMNS]
        for rec in self.lines[list(LINE_COLUMNS) + extra_cols].to_dict("records"):
            for c in money:
                if c not in rec:
                    continue
                rec[c] = None if pd.isna(rec[c]) else units_to_money(int(rec[c]))
            for c in energy:
                rec[c] = None if pd.isna(rec[c]) else units_to_energy(int(rec[c]))
            for c in ("our_duration_s", "partner_duration_s", "our_row", "partner_row"):
                rec[c] = None if pd.isna(rec[c]) else int(rec[c])
            ts = rec["start_date_time"]
            rec["start_date_time"] = None if pd.isna(ts) else pd.Timestamp(ts).to_pydatetime()
            for k, v in list(rec.items()):
                if v is not None and not isinstance(v, (str, int, Decimal)) and pd.isna(v) is True:
                    rec[k] = None
            yield rec

    def classes_of(self, side: str) -> dict[str, str]:
        """CDR id -> class for one side (``ours`` / ``partner``); last wins for repeated ids."""
        col = "our_cdr_id" if side == "ours" else "partner_cdr_id"
        sub = self.lines.loc[self.lines[col].notna(), [col, "cls"]]
        return dict(zip(sub[col], sub["cls"].astype(str)))


def reconcile(
    ours: pd.DataFrame,
    partner: pd.DataFrame,
    contract: Contract,
    *,
    invoices: pd.DataFrame | None = None,
    period: str | None = None,
) -> Reconciliation:
    """Reconcile two CDR frames under ``contract`` (module docstring has the rules).

    ``invoices``: columns ``invoice_id``, ``cdr_id`` and optionally ``cpo`` (defaults to
    the contract's CPO, since CDR ids are unique per CPO). ``None`` = no invoice check.
    """
    ours = conform(ours)
    partner = conform(partner)
    check_currency(ours, contract, "our")
    check_currency(partner, contract, "partner")
    tol = contract.tolerances
    amount_tol = money_to_units(tol.amount)
    energy_tol = energy_to_units(tol.energy_kwh)

    k_ours, k_partner = _key(ours), _key(partner)
    idx_ours, idx_partner = pd.Index(k_ours), pd.Index(k_partner)
    st_ours = _side_status(ours, k_ours, idx_partner, tol)
    st_partner = _side_status(partner, k_partner, idx_ours, tol)

    parts: list[pd.DataFrame] = []
    for side, df, st in (("ours", ours, st_ours), ("partner", partner, st_partner)):
        for code, cls in ((_DUP, DUPLICATE), (_CREDITED, CREDITED)):
            rows = np.flatnonzero(st.status == code)
            if len(rows):
                parts.append(_side_lines(df, rows, side, cls, st.note[rows]))

    # 2. match by id
    a_rows = np.flatnonzero(st_ours.status == _ACTIVE)
    b_rows = np.flatnonzero(st_partner.status == _ACTIVE)
    a_keys = pd.DataFrame({"key": k_ours.to_numpy(dtype=object)[a_rows], "row_a": a_rows})
    b_keys = pd.DataFrame({"key": k_partner.to_numpy(dtype=object)[b_rows], "row_b": b_rows})
    by_id = a_keys.merge(b_keys, on="key", how="inner")[["row_a", "row_b"]]
    by_id["match"] = "id"

    # 2b. match the rest by fingerprint
    rest_a = np.setdiff1d(a_rows, by_id["row_a"].to_numpy(), assume_unique=True)
    rest_b = np.setdiff1d(b_rows, by_id["row_b"].to_numpy(), assume_unique=True)

    def fp(df: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({
            "row": rows, "evse_id": df["evse_id"].to_numpy(dtype=object)[rows],
            "start": _ns(df["start_date_time"])[rows], "energy": df["energy"].to_numpy()[rows],
        })

    by_fp = _fingerprint_pairs(fp(ours, rest_a), fp(partner, rest_b), tol)
    by_fp["match"] = "fingerprint"
    pairs = pd.concat([by_id, by_fp], ignore_index=True)
    ra = pairs["row_a"].to_numpy(dtype=np.int64)
    rb = pairs["row_b"].to_numpy(dtype=np.int64)

    missing_a = np.setdiff1d(rest_a, by_fp["row_a"].to_numpy(dtype=np.int64), assume_unique=True)
    missing_b = np.setdiff1d(rest_b, by_fp["row_b"].to_numpy(dtype=np.int64), assume_unique=True)
    if len(missing_a):
        parts.append(_side_lines(ours, missing_a, "ours", MISSING_AT_PARTNER, None))
    if len(missing_b):
        parts.append(_side_lines(partner, missing_b, "partner", MISSING_AT_US, None))

    # 3. compare pairs
    def col(df, name, rows):
        return df[name].to_numpy()[rows]

    a_start, b_start = _ns(ours["start_date_time"])[ra], _ns(partner["start_date_time"])[rb]
    a_dur = (_ns(ours["end_date_time"])[ra] - a_start) // 1_000_000_000
    b_dur = (_ns(partner["end_date_time"])[rb] - b_start) // 1_000_000_000
    a_en, b_en = col(ours, "energy", ra), col(partner, "energy", rb)
    a_ex, b_ex = col(ours, "cost_excl", ra), col(partner, "cost_excl", rb)
    a_in, b_in = col(ours, "cost_incl", ra), col(partner, "cost_incl", rb)
    energy_bad = np.abs(a_en - b_en) > energy_tol
    duration_bad = np.abs(a_dur - b_dur) > tol.duration_s
    amount_bad = (np.abs(a_ex - b_ex) > amount_tol) | (np.abs(a_in - b_in) > amount_tol)
    cls = np.select(
        [energy_bad, duration_bad, amount_bad],
        [ENERGY_MISMATCH, DURATION_MISMATCH, AMOUNT_MISMATCH],
        default=MATCHED,
    ).astype(object)
    pair_lines = pd.DataFrame({
        "cls": cls, "side": "both", "match": pairs["match"].to_numpy(dtype=object),
        "our_cdr_id": col(ours, "cdr_id", ra), "partner_cdr_id": col(partner, "cdr_id", rb),
        "invoice_id": None, "invoiced_cdr_id": None, "cpo": col(ours, "cpo", ra), "emsp": col(ours, "emsp", ra),
        "evse_id": col(ours, "evse_id", ra), "start_date_time": ours["start_date_time"].to_numpy()[ra],
        "our_cost_excl": pd.array(a_ex, dtype="Int64"), "our_cost_incl": pd.array(a_in, dtype="Int64"),
        "partner_cost_excl": pd.array(b_ex, dtype="Int64"), "partner_cost_incl": pd.array(b_in, dtype="Int64"),
        "our_energy": pd.array(a_en, dtype="Int64"), "partner_energy": pd.array(b_en, dtype="Int64"),
        "our_duration_s": pd.array(a_dur, dtype="Int64"), "partner_duration_s": pd.array(b_dur, dtype="Int64"),
        "our_row": pd.array(ra, dtype="Int64"), "partner_row": pd.array(rb, dtype="Int64"),
        "note": None,
    })
    parts.insert(0, pair_lines)
    lines = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else pair_lines

    # 4. invoices
    n_invoice = 0
    if invoices is not None:
        inv = invoices.copy()
        n_invoice = len(inv)
        if "cpo" not in inv.columns:
            inv["cpo"] = contract.cpo
        inv["cpo"] = inv["cpo"].fillna(contract.cpo)
        inv_key = _key(inv)
        inv_dup = inv_key.duplicated(keep="first").to_numpy()
        first_inv = pd.Series(inv["invoice_id"].to_numpy(dtype=object)[~inv_dup],
                              index=inv_key.to_numpy(dtype=object)[~inv_dup])
        our_k = lines["cpo"].astype(object) + "/" + lines["our_cdr_id"].astype(object)
        par_k = lines["cpo"].astype(object) + "/" + lines["partner_cdr_id"].astype(object)
        inv_of = our_k.map(first_inv)
        inv_of = inv_of.where(inv_of.notna(), par_k.map(first_inv))
        lines["invoice_id"] = inv_of.astype(object).where(inv_of.notna(), None)
        not_invoiced = (lines["cls"] == MATCHED) & lines["invoice_id"].isna()
        lines.loc[not_invoiced, "cls"] = DELIVERED_NOT_INVOICED
        known = pd.Index(k_ours).append(pd.Index(k_partner))
        inv_parts = []
        if inv_dup.any():
            d = inv.loc[inv_dup]
            inv_parts.append(_invoice_lines(d, DUPLICATE, [
                f"CDR {c} invoiced again (first on invoice {first_inv.get(k)})"
                for c, k in zip(d["cdr_id"], inv_key[inv_dup])]))
        undelivered = ~inv_dup & ~inv_key.isin(known).to_numpy()
        if undelivered.any():
            inv_parts.append(_invoice_lines(inv.loc[undelivered], INVOICED_NOT_DELIVERED,
                                            "no CDR with this id on either side"))
        if inv_parts:
            lines = pd.concat([lines, *inv_parts], ignore_index=True)

    lines["cls"] = pd.Categorical(lines["cls"], categories=list(CLASSES))
    lines = lines[list(LINE_COLUMNS)]
    return Reconciliation(contract, period, lines, len(ours), len(partner), n_invoice)


def _invoice_lines(inv: pd.DataFrame, cls: str, note: Any) -> pd.DataFrame:
    n = len(inv)
    na_i = pd.array([pd.NA] * n, dtype="Int64")
    out = pd.DataFrame({
        "cls": cls, "side": "invoice", "match": None, "our_cdr_id": None,
        "partner_cdr_id": None, "invoiced_cdr_id": inv["cdr_id"].to_numpy(dtype=object),
        "invoice_id": inv["invoice_id"].to_numpy(dtype=object),
        "cpo": inv["cpo"].to_numpy(dtype=object), "emsp": None, "evse_id": None,
        "start_date_time": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"), "note": note,
    })
    for c in ("our_cost_excl", "our_cost_incl", "partner_cost_excl", "partner_cost_incl",
              "our_energy", "partner_energy", "our_duration_s", "partner_duration_s",
              "our_row", "partner_row"):
        out[c] = na_i
    if "amount_excl_vat" in inv.columns:
        out["partner_cost_excl"] = pd.array(
            [None if pd.isna(v) else money_to_units(v) for v in inv["amount_excl_vat"]], dtype="Int64")
    return out
