"""Reconciliation classes, one hand-built scenario each; expected outcomes by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest

from settlement.frames import cdr_frame
from settlement.reconcile import CLASSES, CurrencyMismatch, reconcile
from settlement_helpers import T0, cdr, contract


def run(ours, partner, invoices=None, **kw):
    inv = None if invoices is None else pd.DataFrame(invoices, columns=["invoice_id", "cdr_id"])
    return reconcile(cdr_frame(ours), cdr_frame(partner), contract(**kw), invoices=inv)


def classes(rec, side):
    return rec.classes_of(side)


def test_identical_cdrs_match_by_id():
    rec = run([cdr("A")], [cdr("A")])
    assert classes(rec, "ours") == {"A": "matched"}
    assert classes(rec, "partner") == {"A": "matched"}
    assert rec.lines["match"].tolist() == ["id"]


def test_amounts_within_tolerance_match():
    # 10.00 vs 10.01: difference 0.01 equals the tolerance, which still agrees
    rec = run([cdr("A", excl="10.00", incl="12.10")], [cdr("A", excl="10.01", incl="12.11")])
    assert classes(rec, "ours") == {"A": "matched"}


def test_amount_beyond_tolerance_is_amount_mismatch():
    rec = run([cdr("A", excl="10.00", incl="12.10")], [cdr("A", excl="10.50", incl="12.71")])
    assert classes(rec, "ours") == {"A": "amount_mismatch"}
    s = rec.summary().set_index("class")
    # ours 10.00, partner 10.50, difference partner - ours = 0.50
    assert s.loc["amount_mismatch", "our_excl_vat"] == Decimal("10.0000")
    assert s.loc["amount_mismatch", "partner_excl_vat"] == Decimal("10.5000")
    assert s.loc["amount_mismatch", "difference"] == Decimal("0.5000")


def test_only_incl_vat_differing_is_an_amount_mismatch():
    rec = run([cdr("A", excl="10.00", incl="12.10")], [cdr("A", excl="10.00", incl="11.90")])
    assert classes(rec, "ours") == {"A": "amount_mismatch"}


def test_energy_difference_is_energy_mismatch_even_when_amount_differs_too():
    rec = run([cdr("A", kwh="20.000", excl="10.00")], [cdr("A", kwh="21.000", excl="10.50")])
    assert classes(rec, "ours") == {"A": "energy_mismatch"}


def test_duration_difference_is_duration_mismatch():
    # 60 min vs 70 min: 600 s apart, tolerance 60 s
    rec = run([cdr("A", minutes=60)], [cdr("A", minutes=70)])
    assert classes(rec, "ours") == {"A": "duration_mismatch"}


def test_duration_within_tolerance_matches():
    rec = run([cdr("A", minutes=60)], [cdr("A", minutes=61)])  # 60 s apart = tolerance
    assert classes(rec, "ours") == {"A": "matched"}


def test_cdr_only_we_have_is_missing_at_partner_and_vice_versa():
    rec = run([cdr("A"), cdr("B", evse="E2")], [cdr("A"), cdr("C", evse="E3")])
    assert classes(rec, "ours") == {"A": "matched", "B": "missing_at_partner"}
    assert classes(rec, "partner") == {"A": "matched", "C": "missing_at_us"}


def test_same_session_with_another_id_matches_by_fingerprint():
    # partner started its clock 30 s later and numbers CDRs differently; same EVSE, same kWh
    ours = [cdr("OUR-1", evse="E9", start=T0, minutes=60)]
    partner = [cdr("THEIR-77", evse="E9", start=T0 + timedelta(seconds=30), minutes=59.5)]
    rec = run(ours, partner)
    line = rec.lines.iloc[0]
    assert len(rec.lines) == 1
    assert (line["cls"], line["match"], line["our_cdr_id"], line["partner_cdr_id"]) == (
        "matched", "fingerprint", "OUR-1", "THEIR-77")


def test_fingerprint_needs_same_evse_start_and_energy():
    ours = [cdr("O1", evse="E1", start=T0), cdr("O2", evse="E2", start=T0), cdr("O3", evse="E3", start=T0)]
    partner = [
        cdr("P1", evse="E1X", start=T0),  # other EVSE
        cdr("P2", evse="E2", start=T0 + timedelta(seconds=121)),  # start 121 s > 120 s
        cdr("P3", evse="E3", start=T0, kwh="20.020"),  # 0.02 kWh > 0.01 kWh
    ]
    rec = run(ours, partner)
    assert set(classes(rec, "ours").values()) == {"missing_at_partner"}
    assert set(classes(rec, "partner").values()) == {"missing_at_us"}


def test_fingerprint_pairs_one_to_one_by_closest_start():
    ours = [cdr("O1", evse="E1", start=T0), cdr("O2", evse="E1", start=T0 + timedelta(hours=3))]
    partner = [cdr("P2", evse="E1", start=T0 + timedelta(hours=3, seconds=10)),
               cdr("P1", evse="E1", start=T0 + timedelta(seconds=5))]
    rec = run(ours, partner)
    pairs = set(zip(rec.lines["our_cdr_id"], rec.lines["partner_cdr_id"]))
    assert pairs == {("O1", "P1"), ("O2", "P2")}


def test_same_id_twice_is_a_duplicate():
    rec = run([cdr("A")], [cdr("A"), cdr("A")])
    assert rec.lines["cls"].astype(str).tolist().count("matched") == 1
    dup = rec.lines[rec.lines["cls"] == "duplicate"]
    assert dup["side"].tolist() == ["partner"] and dup["partner_cdr_id"].tolist() == ["A"]


def test_same_session_under_two_ids_on_one_side_is_a_duplicate_keeping_the_known_id():
    # partner billed the session twice: X (unknown to us, earlier) and A (our id)
    partner = [cdr("X", start=T0 - timedelta(seconds=20)), cdr("A")]
    rec = run([cdr("A")], partner)
    assert classes(rec, "partner") == {"A": "matched", "X": "duplicate"}
    assert rec.lines.loc[rec.lines["partner_cdr_id"] == "X", "note"].item() == "same session as A"


def test_credit_cdr_nets_its_original_and_the_reissue_matches():
    # partner: original A (10.00), credit A-C (-10.00) naming A, re-issue A2 (9.00); we have A2 only
    partner = [
        cdr("A", excl="10.00", incl="12.10"),
        cdr("A-C", excl="-10.00", incl="-12.10", credit=True, credit_reference_id="A"),
        cdr("A2", excl="9.00", incl="10.89"),
    ]
    rec = run([cdr("A2", excl="9.00", incl="10.89")], partner)
    assert classes(rec, "partner") == {"A": "credited", "A-C": "credited", "A2": "matched"}
    assert classes(rec, "ours") == {"A2": "matched"}
    s = rec.summary().set_index("class")
    # credited lines net to zero on the partner side: 10.00 + (-10.00)
    assert s.loc["credited", "partner_excl_vat"] == Decimal("0")
    assert s.loc["credited", "count"] == 2


def test_credit_whose_original_is_not_here_matches_as_an_ordinary_cdr():
    c = dict(excl="-10.00", incl="-12.10", credit=True, credit_reference_id="OLD")
    rec = run([cdr("OLD-C", **c)], [cdr("OLD-C", **c)])
    assert classes(rec, "ours") == {"OLD-C": "matched"}


def test_second_credit_for_one_original_is_a_duplicate():
    c = dict(excl="-10.00", incl="-12.10", credit=True, credit_reference_id="A")
    partner = [cdr("A"), cdr("A-C", **c), cdr("A-C2", **c)]
    rec = run([], partner)
    assert classes(rec, "partner") == {"A": "credited", "A-C": "credited", "A-C2": "duplicate"}


def test_invoices_flag_undelivered_and_uninvoiced_and_double_invoiced_cdrs():
    ours = [cdr("A", evse="E1"), cdr("B", evse="E2")]
    partner = [cdr("A", evse="E1"), cdr("B", evse="E2")]
    invoices = [("INV-1", "A"), ("INV-1", "Z"), ("INV-2", "A")]
    rec = run(ours, partner, invoices)
    by_cls = {c: g for c, g in rec.lines.groupby("cls", observed=True)}
    assert by_cls["matched"][["our_cdr_id", "invoice_id"]].values.tolist() == [["A", "INV-1"]]
    assert by_cls["delivered_not_invoiced"]["our_cdr_id"].tolist() == ["B"]
    assert by_cls["invoiced_not_delivered"][["invoiced_cdr_id", "invoice_id"]].values.tolist() == [["Z", "INV-1"]]
    assert by_cls["duplicate"][["invoiced_cdr_id", "invoice_id", "side"]].values.tolist() == [["A", "INV-2", "invoice"]]


def test_currency_mismatch_is_an_error_not_a_conversion():
    with pytest.raises(CurrencyMismatch, match=r"A \(USD\)"):
        run([cdr("A")], [cdr("A", currency="USD")])


def test_every_cdr_on_either_side_gets_exactly_one_class():
    ours = [cdr("M"), cdr("AM", evse="E2", excl="5.00"), cdr("EM", evse="E3"), cdr("DM", evse="E4"),
            cdr("MP", evse="E5"), cdr("D", evse="E6"), cdr("D", evse="E6")]
    partner = [cdr("M"), cdr("AM", evse="E2", excl="6.00"), cdr("EM", evse="E3", kwh="25"),
               cdr("DM", evse="E4", minutes=90), cdr("MU", evse="E7"), cdr("D", evse="E6")]
    rec = run(ours, partner)
    assert rec.lines["our_cdr_id"].notna().sum() == len(ours)
    assert rec.lines["partner_cdr_id"].notna().sum() == len(partner)
    got = {(o, p, c) for o, p, c in zip(rec.lines["our_cdr_id"], rec.lines["partner_cdr_id"], rec.lines["cls"])}
    assert got == {
        ("M", "M", "matched"), ("AM", "AM", "amount_mismatch"), ("EM", "EM", "energy_mismatch"),
        ("DM", "DM", "duration_mismatch"), ("MP", None, "missing_at_partner"),
        (None, "MU", "missing_at_us"), ("D", "D", "matched"), ("D", None, "duplicate"),
    }
    s = rec.summary()
    assert s["class"].tolist() == list(CLASSES)
    assert s["count"].sum() == len(rec.lines) == 8


def test_nearest_start_rounds_give_the_same_pairs_as_the_exact_method(monkeypatch):
    # the bounded-memory method used when an EVSE has very many unmatched CDRs
    import settlement.reconcile as r

    monkeypatch.setattr(r, "EXACT_CANDIDATE_LIMIT", 0)
    ours = [cdr("O1", evse="E1", start=T0), cdr("O2", evse="E1", start=T0 + timedelta(hours=3)),
            cdr("O3", evse="E1", start=T0 + timedelta(hours=6))]
    partner = [cdr("P2", evse="E1", start=T0 + timedelta(hours=3, seconds=10)),
               cdr("P1", evse="E1", start=T0 + timedelta(seconds=5)),
               cdr("P3", evse="E1", start=T0 + timedelta(hours=6, seconds=30), kwh="30")]  # other energy
    rec = run(ours, partner)
    pairs = {(o, p) for o, p in zip(rec.lines["our_cdr_id"], rec.lines["partner_cdr_id"]) if o and p}
    assert pairs == {("O1", "P1"), ("O2", "P2")}
    assert classes(rec, "ours")["O3"] == "missing_at_partner"


def test_reservation_cdrs_without_an_evse_match_by_id_only():
    # evse_id "#NA": a reservation that never became a session (mod_cdrs CdrLocation)
    rec = run([cdr("R1", evse="#NA"), cdr("R2", evse="#NA")], [cdr("R9", evse="#NA")])
    assert classes(rec, "ours") == {"R1": "missing_at_partner", "R2": "missing_at_partner"}
    assert classes(rec, "partner") == {"R9": "missing_at_us"}


def test_a_cdr_the_partner_credited_is_missing_at_partner_with_a_note():
    # we still bill A; the partner holds A and its credit A-C, so A is not payable for them
    partner = [cdr("A"), cdr("A-C", excl="-10.00", incl="-12.10", credit=True, credit_reference_id="A")]
    rec = run([cdr("A")], partner)
    assert classes(rec, "ours") == {"A": "missing_at_partner"}
    assert classes(rec, "partner") == {"A": "credited", "A-C": "credited"}
    note = rec.lines.loc[rec.lines["side"] == "ours", "note"].item()
    assert note == "the partner credited this CDR (credited by A-C)"


def test_a_credit_that_does_not_net_its_original_says_what_is_left():
    # original 10.00 / 12.10, credit only -9.00 / -10.89: 1.00 / 1.21 left
    partner = [cdr("A"), cdr("A-C", excl="-9.00", incl="-10.89", credit=True, credit_reference_id="A")]
    rec = run([], partner)
    note = rec.lines.loc[rec.lines["partner_cdr_id"] == "A-C", "note"].item()
    assert note == "credits A; does not net it: 1.0000 excl, 1.2100 incl VAT left"
