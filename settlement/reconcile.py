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


#: ``evse_id`` of a CDR for a reservation that never became a session (mod_cdrs CdrLocation):
#: it identifies no EVSE, so such CDRs are matched by id only.
NOT_AVAILABLE = "#NA"


@dataclass
class _Side:
    """One side's CDR frame as plain numpy arrays, with integer codes for identities.

    ``key`` codes (CPO, CDR id) and ``ref`` codes (CPO, credit_reference_id) share one code
    space across both sides and the invoices, so matching is integer work, not strings.
    """

    n: int
    cdr_id: np.ndarray  # object
    cpo: np.ndarray  # object
    emsp: np.ndarray  # object
    evse: np.ndarray  # object
    start: np.ndarray  # int64 ns
    end: np.ndarray  # int64 ns
    excl: np.ndarray  # int64 1e-4
    incl: np.ndarray
    energy: np.ndarray  # int64 1e-6 kWh
    credit: np.ndarray  # bool
    key: np.ndarray = None  # int64
    ref: np.ndarray = None  # int64, -1 = none
    evse_code: np.ndarray = None  # int64, -1 = not fingerprintable

    @classmethod
    def of(cls, df: pd.DataFrame) -> "_Side":
        return cls(
            n=len(df), cdr_id=df["cdr_id"].to_numpy(dtype=object), cpo=df["cpo"].to_numpy(dtype=object),
            emsp=df["emsp"].to_numpy(dtype=object), evse=df["evse_id"].to_numpy(dtype=object),
            start=_ns(df["start_date_time"]), end=_ns(df["end_date_time"]),
            excl=df["cost_excl"].to_numpy(dtype=np.int64), incl=df["cost_incl"].to_numpy(dtype=np.int64),
            energy=df["energy"].to_numpy(dtype=np.int64), credit=df["credit"].to_numpy(dtype=bool),
        ), df["credit_reference_id"].to_numpy(dtype=object)


def _encode(sides: list[tuple["_Side", np.ndarray]], inv_cpo: np.ndarray, inv_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give every side its ``key``/``ref``/``evse_code``; returns the invoices' keys."""
    sizes = [s.n for s, _ in sides]
    cpo_codes, cpo_uni = pd.factorize(np.concatenate([s.cpo for s, _ in sides] + [inv_cpo]))
    refs = [r for _, r in sides]
    has_ref = [pd.notna(r) for r in refs]
    id_vals = np.concatenate([s.cdr_id for s, _ in sides] + [r[h] for r, h in zip(refs, has_ref)] + [inv_ids])
    id_codes, id_uni = pd.factorize(id_vals)
    width = np.int64(max(len(id_uni), 1))
    pos_c = pos_i = 0
    for (side, ref), hr in zip(sides, has_ref):
        c = cpo_codes[pos_c:pos_c + side.n].astype(np.int64)
        side.key = c * width + id_codes[pos_i:pos_i + side.n]
        pos_c += side.n
        pos_i += side.n
    for (side, ref), hr in zip(sides, has_ref):
        k = int(hr.sum())
        side.ref = np.full(side.n, -1, dtype=np.int64)
        c = (side.key[hr] // width)
        side.ref[hr] = c * width + id_codes[pos_i:pos_i + k]
        pos_i += k
    inv_key = cpo_codes[pos_c:].astype(np.int64) * width + id_codes[pos_i:]
    evse_codes, evse_uni = pd.factorize(np.concatenate([s.evse for s, _ in sides]))
    na = np.flatnonzero(evse_uni == NOT_AVAILABLE)
    evse_codes = evse_codes.astype(np.int64)
    if len(na):
        evse_codes[evse_codes == na[0]] = -1
    pos = 0
    for side, _ in sides:
        side.evse_code = evse_codes[pos:pos + side.n]
        pos += side.n
    return inv_key, width


@dataclass
class _SideStatus:
    status: np.ndarray  # int8: _ACTIVE / _DUP / _CREDITED
    note: np.ndarray  # object: reason for duplicate / credited


def _side_status(side: _Side, credit_ref_ids: np.ndarray, other_keys: np.ndarray, tol) -> _SideStatus:
    """Duplicates and credit pairs within one side (module docstring, step 1)."""
    n = side.n
    status = np.zeros(n, dtype=np.int8)
    note = np.full(n, None, dtype=object)
    if n == 0:
        return _SideStatus(status, note)

    # a) the same id again
    id_dup = pd.Series(side.key).duplicated(keep="first").to_numpy()
    status[id_dup] = _DUP
    note[id_dup] = "same CDR id delivered again"

    # b) credit CDRs and their originals
    originals = np.flatnonzero(~side.credit & ~id_dup)
    credits = np.flatnonzero(side.credit & ~id_dup)
    if len(credits):
        pos = pd.Index(side.key[originals]).get_indexer(side.ref[credits])
        pos[side.ref[credits] < 0] = -1
        found = pos >= 0
        first = found & ~pd.Series(np.where(found, pos, -1 - np.arange(len(pos)))).duplicated().to_numpy()
        again = found & ~first
        c_first, c_again = credits[first], credits[again]
        o_rows = originals[pos[first]]
        status[c_first] = _CREDITED
        status[o_rows] = _CREDITED
        for c, o in zip(c_first, o_rows):
            note[c] = f"credits {side.cdr_id[o]}"
            note[o] = f"credited by {side.cdr_id[c]}"
            net_excl, net_incl = side.excl[c] + side.excl[o], side.incl[c] + side.incl[o]
            if net_excl or net_incl:  # mod_cdrs: the credit carries the negated total_cost
                note[c] += (f"; does not net it: {units_to_money(net_excl)} excl,"
                            f" {units_to_money(net_incl)} incl VAT left")
        status[c_again] = _DUP
        for c in c_again:
            note[c] = f"second credit for {credit_ref_ids[c]}"

    # c) the same session under another id (fingerprint), among active non-credit CDRs
    cand = np.flatnonzero((status == _ACTIVE) & ~side.credit & (side.evse_code >= 0))
    if len(cand) > 1:
        evse, start, energy = side.evse_code[cand], side.start[cand], side.energy[cand]
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
            known = np.isin(side.key[rows], other_keys)
            sub = pd.DataFrame({"row": rows, "cl": cl, "unknown": ~known, "start": start_o[in_multi]})
            sub = sub.sort_values(["cl", "unknown", "start"], kind="stable")
            keep = sub.drop_duplicates("cl")
            kept_row = dict(zip(keep["cl"], keep["row"]))
            dups = sub.loc[sub["cl"].duplicated()]
            for r, c in zip(dups["row"], dups["cl"]):
                status[r] = _DUP
                note[r] = f"same session as {side.cdr_id[kept_row[c]]}"
    return _SideStatus(status, note)


def _credited_elsewhere(side: _Side, rows: np.ndarray, other: _Side, other_st: _SideStatus, who: str) -> np.ndarray:
    """Notes for missing CDRs that the other side has, but credited (so not payable there)."""
    note = np.full(len(rows), None, dtype=object)
    credited = np.flatnonzero(other_st.status == _CREDITED)
    if len(credited) and len(rows):
        pos = pd.Index(other.key[credited]).get_indexer(side.key[rows])
        for i in np.flatnonzero(pos >= 0):
            note[i] = f"{who} credited this CDR ({other_st.note[credited[pos[i]]]})"
    return note


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"row_a": pd.Series(dtype=np.int64), "row_b": pd.Series(dtype=np.int64)})


#: Above this many (EVSE-equal) candidate pairs, fingerprint matching switches from the
#: exact all-candidates method to nearest-start rounds (bounded memory).
EXACT_CANDIDATE_LIMIT = 5_000_000


def _fingerprint_pairs(a: _Side, rows_a: np.ndarray, b: _Side, rows_b: np.ndarray, tol) -> pd.DataFrame:
    """One-to-one pairs of the same session fingerprint: same EVSE, start within
    ``start_s``, energy within ``energy_kwh``; closest start first."""
    rows_a = rows_a[a.evse_code[rows_a] >= 0]
    rows_b = rows_b[b.evse_code[rows_b] >= 0]
    if len(rows_a) == 0 or len(rows_b) == 0:
        return _empty_pairs()
    start_tol = tol.start_s * 1_000_000_000
    energy_tol = energy_to_units(tol.energy_kwh)
    A = pd.DataFrame({"row_a": rows_a, "evse": a.evse_code[rows_a], "start_a": a.start[rows_a],
                      "energy_a": a.energy[rows_a]})
    B = pd.DataFrame({"row_b": rows_b, "evse": b.evse_code[rows_b], "start_b": b.start[rows_b],
                      "energy_b": b.energy[rows_b]})
    size = int(max(A["evse"].max(), B["evse"].max())) + 1
    estimate = int(np.dot(np.bincount(A["evse"], minlength=size).astype(np.int64),
                          np.bincount(B["evse"], minlength=size).astype(np.int64)))
    if estimate <= EXACT_CANDIDATE_LIMIT:
        cand = A.merge(B, on="evse")
        d_start = np.abs(cand["start_a"].to_numpy() - cand["start_b"].to_numpy())
        d_energy = np.abs(cand["energy_a"].to_numpy() - cand["energy_b"].to_numpy())
        ok = (d_start <= start_tol) & (d_energy <= energy_tol)
        cand = cand.loc[ok, ["row_a", "row_b"]].assign(d_start=d_start[ok], d_energy=d_energy[ok])
        return _greedy_one_to_one(cand)
    # Nearest start per EVSE, both ways; mutual nearest pairs within tolerance are taken,
    # then again on what is left (a few rounds suffice: sessions on one EVSE are far apart).
    chosen = []
    for _ in range(4):
        if A.empty or B.empty:
            break
        A = A.sort_values("start_a")
        B = B.sort_values("start_b")
        ab = pd.merge_asof(A, B, left_on="start_a", right_on="start_b", by="evse", direction="nearest",
                           tolerance=start_tol).dropna(subset=["row_b"])
        ba = pd.merge_asof(B, A, left_on="start_b", right_on="start_a", by="evse", direction="nearest",
                           tolerance=start_tol).dropna(subset=["row_a"])
        ab["row_b"] = ab["row_b"].astype(np.int64)
        ba["row_a"] = ba["row_a"].astype(np.int64)
        mutual = ab.merge(ba[["row_a", "row_b"]], on=["row_a", "row_b"])
        mutual = mutual[np.abs(mutual["energy_a"].to_numpy() - mutual["energy_b"].to_numpy()) <= energy_tol]
        if mutual.empty:
            break
        chosen.append(mutual[["row_a", "row_b"]])
        A = A[~A["row_a"].isin(mutual["row_a"])]
        B = B[~B["row_b"].isin(mutual["row_b"])]
    return pd.concat(chosen, ignore_index=True) if chosen else _empty_pairs()


def _greedy_one_to_one(cand: pd.DataFrame) -> pd.DataFrame:
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
    return pd.concat(chosen, ignore_index=True) if chosen else _empty_pairs()


def _int(values: np.ndarray | None, n: int) -> pd.arrays.IntegerArray:
    """A nullable Int64 array: ``values`` as given, or all missing when ``None``."""
    if values is None:
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    return pd.arrays.IntegerArray(np.asarray(values, dtype=np.int64), np.zeros(len(values), dtype=bool))


def _obj(values: np.ndarray) -> pd.Series:
    """An object column as is (no conversion of a million strings to another dtype)."""
    return pd.Series(values, dtype=object, copy=False)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _side_lines(side: _Side, rows: np.ndarray, which: str, cls: Any, note: Any, invoice: np.ndarray) -> pd.DataFrame:
    """Lines for single CDRs of one side (missing, duplicate, credited)."""
    p = "our" if which == "ours" else "partner"
    o = "partner" if which == "ours" else "our"
    n = len(rows)
    dur = (side.end[rows] - side.start[rows]) // 1_000_000_000
    return pd.DataFrame({
        "cls": cls, "side": which, "match": None,
        f"{p}_cdr_id": _obj(side.cdr_id[rows]), f"{o}_cdr_id": None,
        "invoice_id": _obj(invoice[rows]), "invoiced_cdr_id": None, "cpo": _obj(side.cpo[rows]),
        "emsp": _obj(side.emsp[rows]), "evse_id": _obj(side.evse[rows]), "start_date_time": _utc(side.start[rows]),
        f"{p}_cost_excl": _int(side.excl[rows], n), f"{p}_cost_incl": _int(side.incl[rows], n),
        f"{o}_cost_excl": _int(None, n), f"{o}_cost_incl": _int(None, n),
        f"{p}_energy": _int(side.energy[rows], n), f"{o}_energy": _int(None, n),
        f"{p}_duration_s": _int(dur, n), f"{o}_duration_s": _int(None, n),
        f"{p}_row": _int(rows, n), f"{o}_row": _int(None, n),
        "note": _obj(note) if isinstance(note, np.ndarray) else note,
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

    a, a_refs = _Side.of(ours)
    b, b_refs = _Side.of(partner)
    if invoices is not None:
        inv_ids = invoices["cdr_id"].to_numpy(dtype=object)
        inv_cpo = (invoices["cpo"].to_numpy(dtype=object).copy() if "cpo" in invoices.columns
                   else np.full(len(invoices), contract.cpo, dtype=object))
        inv_cpo[pd.isna(inv_cpo)] = contract.cpo
        inv_invoice = invoices["invoice_id"].to_numpy(dtype=object)
    else:
        inv_ids = inv_cpo = inv_invoice = np.array([], dtype=object)
    inv_key, _ = _encode([(a, a_refs), (b, b_refs)], inv_cpo, inv_ids)

    st_a = _side_status(a, a_refs, b.key, tol)
    st_b = _side_status(b, b_refs, a.key, tol)

    # invoice of each CDR (first invoice line naming it), and invoice lines named twice
    inv_dup = pd.Series(inv_key).duplicated(keep="first").to_numpy()
    inv_first = pd.Index(inv_key[~inv_dup])
    inv_first_ids = inv_invoice[~inv_dup]

    def invoice_of(side: _Side) -> np.ndarray:
        out = np.full(side.n, None, dtype=object)
        if len(inv_first):
            pos = inv_first.get_indexer(side.key)
            out[pos >= 0] = inv_first_ids[pos[pos >= 0]]
        return out

    inv_a, inv_b = invoice_of(a), invoice_of(b)

    parts: list[pd.DataFrame] = []
    for which, side, st, inv in (("ours", a, st_a, inv_a), ("partner", b, st_b, inv_b)):
        for code, cls in ((_DUP, DUPLICATE), (_CREDITED, CREDITED)):
            rows = np.flatnonzero(st.status == code)
            if len(rows):
                parts.append(_side_lines(side, rows, which, cls, st.note[rows], inv))

    # 2. match by id (active keys are unique on each side after step 1)
    a_rows = np.flatnonzero(st_a.status == _ACTIVE)
    b_rows = np.flatnonzero(st_b.status == _ACTIVE)
    pos = pd.Index(b.key[b_rows]).get_indexer(a.key[a_rows])
    hit = pos >= 0
    id_a, id_b = a_rows[hit], b_rows[pos[hit]]

    # 2b. match the rest by fingerprint
    rest_a = a_rows[~hit]
    rest_b = np.setdiff1d(b_rows, id_b, assume_unique=True)
    by_fp = _fingerprint_pairs(a, rest_a, b, rest_b, tol)
    fp_a = by_fp["row_a"].to_numpy(dtype=np.int64)
    fp_b = by_fp["row_b"].to_numpy(dtype=np.int64)
    ra = np.concatenate([id_a, fp_a])
    rb = np.concatenate([id_b, fp_b])
    match = np.concatenate([np.full(len(id_a), "id", dtype=object), np.full(len(fp_a), "fingerprint", dtype=object)])

    missing_a = np.setdiff1d(rest_a, fp_a, assume_unique=True)
    missing_b = np.setdiff1d(rest_b, fp_b, assume_unique=True)
    if len(missing_a):
        parts.append(_side_lines(a, missing_a, "ours", MISSING_AT_PARTNER,
                                 _credited_elsewhere(a, missing_a, b, st_b, "the partner"), inv_a))
    if len(missing_b):
        parts.append(_side_lines(b, missing_b, "partner", MISSING_AT_US,
                                 _credited_elsewhere(b, missing_b, a, st_a, "we"), inv_b))

    # 3. compare pairs
    a_dur = (a.end[ra] - a.start[ra]) // 1_000_000_000
    b_dur = (b.end[rb] - b.start[rb]) // 1_000_000_000
    a_en, b_en = a.energy[ra], b.energy[rb]
    a_ex, b_ex = a.excl[ra], b.excl[rb]
    a_in, b_in = a.incl[ra], b.incl[rb]
    energy_bad = np.abs(a_en - b_en) > energy_tol
    duration_bad = np.abs(a_dur - b_dur) > tol.duration_s
    amount_bad = (np.abs(a_ex - b_ex) > amount_tol) | (np.abs(a_in - b_in) > amount_tol)
    pair_invoice = inv_a[ra]
    no_inv = pd.isna(pair_invoice)
    pair_invoice[no_inv] = inv_b[rb][no_inv]
    codes = np.select(
        [energy_bad, duration_bad, amount_bad],
        [1, 2, 3],
        default=0,
    ).astype(np.int8)
    if invoices is not None:
        codes[(codes == 0) & pd.isna(pair_invoice)] = 4
    cls = pd.Categorical.from_codes(
        np.array([CLASSES.index(c) for c in (MATCHED, ENERGY_MISMATCH, DURATION_MISMATCH, AMOUNT_MISMATCH,
                                             DELIVERED_NOT_INVOICED)], dtype=np.int8)[codes],
        categories=list(CLASSES))
    n = len(ra)
    pair_lines = pd.DataFrame({
        "cls": cls, "side": "both", "match": _obj(match),
        "our_cdr_id": _obj(a.cdr_id[ra]), "partner_cdr_id": _obj(b.cdr_id[rb]),
        "invoice_id": _obj(pair_invoice), "invoiced_cdr_id": None, "cpo": _obj(a.cpo[ra]), "emsp": _obj(a.emsp[ra]),
        "evse_id": _obj(a.evse[ra]), "start_date_time": _utc(a.start[ra]),
        "our_cost_excl": _int(a_ex, n), "our_cost_incl": _int(a_in, n),
        "partner_cost_excl": _int(b_ex, n), "partner_cost_incl": _int(b_in, n),
        "our_energy": _int(a_en, n), "partner_energy": _int(b_en, n),
        "our_duration_s": _int(a_dur, n), "partner_duration_s": _int(b_dur, n),
        "our_row": _int(ra, n), "partner_row": _int(rb, n),
        "note": None,
    })
    parts.insert(0, pair_lines)

    # 4. invoice lines naming a CDR twice, or naming no CDR at all
    n_invoice = 0
    if invoices is not None:
        n_invoice = len(invoices)
        inv = pd.DataFrame({"invoice_id": inv_invoice, "cdr_id": inv_ids, "cpo": inv_cpo})
        if "amount_excl_vat" in invoices.columns:
            inv["amount_excl_vat"] = invoices["amount_excl_vat"].to_numpy(dtype=object)
        if inv_dup.any():
            d = inv.loc[inv_dup]
            first_of = dict(zip(inv_first, inv_first_ids))
            parts.append(_invoice_lines(d, DUPLICATE, [
                f"CDR {c} invoiced again (first on invoice {first_of.get(k)})"
                for c, k in zip(d["cdr_id"], inv_key[inv_dup])]))
        delivered = np.concatenate([a.key, b.key])
        undelivered = ~inv_dup & ~np.isin(inv_key, delivered)
        if undelivered.any():
            parts.append(_invoice_lines(inv.loc[undelivered], INVOICED_NOT_DELIVERED,
                                        "no CDR with this id on either side"))

    parts = [p for p in parts if len(p)] or [pair_lines]
    lines = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    lines["cls"] = pd.Categorical(lines["cls"], categories=list(CLASSES))
    lines = lines[list(LINE_COLUMNS)]
    return Reconciliation(contract, period, lines, len(ours), len(partner), n_invoice)


def _invoice_lines(inv: pd.DataFrame, cls: str, note: Any) -> pd.DataFrame:
    n = len(inv)
    out = pd.DataFrame({
        "cls": cls, "side": "invoice", "match": None, "our_cdr_id": None,
        "partner_cdr_id": None, "invoiced_cdr_id": inv["cdr_id"].to_numpy(dtype=object),
        "invoice_id": inv["invoice_id"].to_numpy(dtype=object),
        "cpo": inv["cpo"].to_numpy(dtype=object), "emsp": None, "evse_id": None,
        "start_date_time": pd.DatetimeIndex([pd.NaT] * n, tz="UTC"), "note": note,
    })
    for c in ("our_cost_excl", "our_cost_incl", "partner_cost_excl", "partner_cost_incl",
              "our_energy", "partner_energy", "our_duration_s", "partner_duration_s",
              "our_row", "partner_row"):
        out[c] = _int(None, n)
    if "amount_excl_vat" in inv.columns:  # the invoiced amount shows as the partner's money
        amounts = inv["amount_excl_vat"].to_numpy(dtype=object)
        given = ~pd.isna(amounts)
        units = np.zeros(n, dtype=np.int64)
        units[given] = [money_to_units(v) for v in amounts[given]]
        out["partner_cost_excl"] = pd.arrays.IntegerArray(units, ~given)
    return out
