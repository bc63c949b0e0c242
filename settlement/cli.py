"""``chargeledger reconcile`` and ``chargeledger statement``: thin shells over the core.

reconcile: read the contracts (file and/or database), the partner's CDRs (and invoices),
our CDRs (a file, or the pipeline's ``cdrs`` table with ``--from-db``); store the partner
files as imports (all or nothing), reconcile the contract's pair for the period, re-price
the amount mismatches, store the run, and print a summary table (counts and money per
class). Exit 0 when reconciled (whatever the findings), 2 on bad input.

statement: ``issue`` builds a statement from the latest stored runs of the period (a pair:
us and ``--party``; a hub: every contract through ``--hub``) and stores it immutably;
``export`` writes a stored statement as CSV, Parquet or HTML; ``list`` shows them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from chargeledger.settings import get_settings
from settlement.contracts import ContractBook, ContractError, Period, load_contracts, normalise_party, party_key
from settlement.imports import ImportFailed, read_invoices, read_partner_cdrs
from settlement.money import UnknownCurrency
from settlement.reconcile import AMOUNT_MISMATCH, ReconciliationError, contract_mask, reconcile


class _Progress:
    """Stage messages with elapsed time on stderr (long batch jobs show progress)."""

    def __init__(self, quiet: bool = False):
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def _db(url: str | None):
    from storage.db import make_engine, make_sessionmaker, upgrade

    url = url or get_settings().database_url
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def _book(args, Session) -> ContractBook:
    from settlement import repository as repo

    if args.contracts:
        book = load_contracts(args.contracts)
        if Session is not None:
            with Session.begin() as s:
                repo.save_book(s, book)
        return book
    if Session is None:
        raise ContractError("no contracts: give --contracts FILE (or use the database)")
    with Session() as s:
        return repo.load_book(s)


def format_summary(summary, currency: str) -> str:
    """The summary table as aligned text."""
    head = ("class", "count", f"ours excl VAT ({currency})", f"partner excl VAT ({currency})", "difference")
    rows = [head] + [(r["class"], f"{r['count']:,}", str(r["our_excl_vat"]), str(r["partner_excl_vat"]),
                      str(r["difference"])) for r in summary.to_dict("records")]
    total = ("total", f"{summary['count'].sum():,}", str(sum(summary["our_excl_vat"])),
             str(sum(summary["partner_excl_vat"])), str(sum(summary["difference"])))
    rows.append(total)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(rows[0]), sep, *map(fmt, rows[1:-1]), sep, fmt(rows[-1])])


def reconcile_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="chargeledger reconcile", description=__doc__.split("\n\n")[1])
    ap.add_argument("--party", required=True, help="the partner, OCPI identity CC*PID (e.g. DE*MSP)")
    ap.add_argument("--period", required=True, help="billing period YYYY-MM (by session start, UTC)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ours", help="our CDRs from a file (same formats as the partner's)")
    src.add_argument("--from-db", action="store_true", help="our CDRs from the pipeline's cdrs table")
    ap.add_argument("--partner-cdrs", required=True, help="partner CDRs: .json (OCPI), .jsonl or .csv")
    ap.add_argument("--invoices", help="partner invoice lines: .csv or OCPI 2.3.0 Invoice Reconciliation .json/.jsonl")
    ap.add_argument("--contracts", help="parties and contracts file (.json/.toml); stored in the database")
    ap.add_argument("--contract", help="contract id, when the pair has more than one")
    ap.add_argument("--us", help="our OCPI identity (default: settings country_code*party_id)")
    ap.add_argument("--db", help="database URL (default: CHARGELEDGER_DATABASE_URL)")
    ap.add_argument("--no-db", action="store_true", help="touch no database (files only; nothing stored)")
    ap.add_argument("--store-matched", action="store_true", help="store matched lines too (default: findings only)")
    ap.add_argument("--lines", help="write every reconciliation line to this CSV file")
    ap.add_argument("--quiet", action="store_true", help="no progress messages")
    args = ap.parse_args(argv)
    say = _Progress(args.quiet)
    try:
        if args.no_db and args.from_db:
            raise ContractError("--from-db needs the database")
        period = Period.parse(args.period)
        settings = get_settings()
        us = normalise_party(args.us or party_key(settings.country_code, settings.party_id))
        partner = normalise_party(args.party)
        Session = None if args.no_db else _db(args.db)
        book = _book(args, Session)
        contract = book.get(args.contract) if args.contract else book.contract_for(us, partner)
        if not contract.involves(us) or not contract.involves(partner):
            raise ContractError(f"contract {contract.id} is not between {us} and {partner}")
        say(f"contract {contract.id}: CPO {contract.cpo}, eMSP {contract.emsp}, {contract.currency}, period {period.label}")

        say(f"reading partner CDRs {args.partner_cdrs}")
        theirs = read_partner_cdrs(args.partner_cdrs, progress=lambda n: say(f"  ... {n:,} rows"))
        say(f"  {len(theirs.frame):,} partner CDRs valid")
        invoices = None
        if args.invoices:
            say(f"reading invoices {args.invoices}")
            invoices = read_invoices(args.invoices, issuer=contract.issuer)
            say(f"  {len(invoices.frame):,} invoice lines valid")
        if args.from_db:
            from settlement import repository as repo

            with Session() as s:
                ours_frame, _ = repo.load_our_cdrs(s, contract, period)
            ours_source = "db:cdrs"
        else:
            say(f"reading our CDRs {args.ours}")
            ours_frame = read_partner_cdrs(args.ours, progress=lambda n: say(f"  ... {n:,} rows")).frame
            ours_source = str(args.ours)
        mask_o = contract_mask(ours_frame, contract, period)
        mask_p = contract_mask(theirs.frame, contract, period)
        ours_sel = ours_frame.loc[mask_o].reset_index(drop=True)
        partner_sel = theirs.frame.loc[mask_p].reset_index(drop=True)
        docs = [d for d, m in zip(theirs.docs, mask_p) if m] if theirs.docs else []
        say(f"in contract and period: ours {len(ours_sel):,} of {len(ours_frame):,}, "
            f"partner {len(partner_sel):,} of {len(theirs.frame):,}")

        say("reconciling")
        inv_frame = None
        if invoices is not None:
            inv_frame = invoices.frame[["invoice_id", "cdr_id", "cpo", "amount_excl_vat"]]
            # An invoice line naming a CDR that is in the files but of another pair or period
            # belongs to that reconciliation, not to this one (it is not "not delivered").
            selected = set(ours_sel["cdr_id"]) | set(partner_sel["cdr_id"])
            elsewhere = (set(ours_frame["cdr_id"]) | set(theirs.frame["cdr_id"])) - selected
            other = inv_frame["cdr_id"].isin(elsewhere).to_numpy()
            if other.any():
                say(f"  {int(other.sum()):,} invoice line(s) name CDRs of another pair or period: left out")
                inv_frame = inv_frame.loc[~other]
        rec = reconcile(ours_sel, partner_sel, contract, invoices=inv_frame, period=period.label)
        n_am = int((rec.lines["cls"] == AMOUNT_MISMATCH).sum())
        if n_am:
            from settlement.reprice import explain_amount_mismatches

            say(f"re-pricing {n_am:,} amount mismatch(es) with the contract tariff")
            explain_amount_mismatches(rec, docs)
        run_id = None
        if Session is not None:
            from settlement import repository as repo

            say("storing partner import(s) and the run")
            with Session.begin() as s:
                imp = repo.store_partner_cdrs(s, theirs, partner)
                sources = [f"import:{imp}"]
                if invoices is not None:
                    sources.append(f"import:{repo.store_invoices(s, invoices, partner)}")
                run_id = repo.save_run(s, rec, party=us, ours_source=ours_source,
                                       partner_source=",".join(sources), store_matched=args.store_matched)
        if args.lines:
            import pandas as pd

            pd.DataFrame(list(rec.records())).to_csv(args.lines, index=False)
            say(f"lines written to {args.lines}")
        say("done")
    except (ImportFailed, ReconciliationError, ContractError, UnknownCurrency, FileNotFoundError, ValueError) as exc:
        print(f"chargeledger reconcile: {exc}", file=sys.stderr)
        return 2

    print(f"Reconciliation {contract.id} {period.label}: ours {rec.our_count:,} CDRs, partner {rec.partner_count:,} CDRs"
          + (f", {rec.invoice_line_count:,} invoice lines" if invoices is not None else "")
          + (f" (run {run_id})" if run_id else ""))
    print(format_summary(rec.summary(), contract.currency))
    if "reprice_agrees_with" in rec.lines.columns:
        am = rec.lines[rec.lines["cls"] == AMOUNT_MISMATCH]
        if len(am):
            counts = am["reprice_agrees_with"].value_counts().to_dict()
            print("re-pricing of amount mismatches, our engine agrees with: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def statement_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="chargeledger statement", description="issue and export settlement statements")
    ap.add_argument("--db", help="database URL (default: CHARGELEDGER_DATABASE_URL)")
    sub = ap.add_subparsers(dest="action", required=True)
    iss = sub.add_parser("issue", help="issue a statement from the period's latest reconciliation runs")
    who = iss.add_mutually_exclusive_group(required=True)
    who.add_argument("--party", help="the counterparty CC*PID (a pair statement: us and them)")
    who.add_argument("--hub", help="a hub CC*PID (net positions of all its parties)")
    iss.add_argument("--period", required=True, help="YYYY-MM")
    iss.add_argument("--us", help="our OCPI identity (default: settings)")
    iss.add_argument("--corrects", help="id of the statement this one corrects")
    exp = sub.add_parser("export", help="export a stored statement")
    exp.add_argument("statement_id")
    exp.add_argument("--format", choices=("csv", "parquet", "html"), required=True)
    exp.add_argument("--out", required=True)
    sub.add_parser("list", help="list issued statements")
    args = ap.parse_args(argv)

    from settlement import repository as repo
    from settlement import statements as st

    try:
        Session = _db(args.db)
        if args.action == "issue":
            period = Period.parse(args.period)
            settings = get_settings()
            with Session.begin() as s:
                book = repo.load_book(s)
                if args.hub:
                    hub = normalise_party(args.hub)
                    contracts = [c for c in book.contracts if c.hub == hub]
                    party, counterparty, kind = hub, None, "hub"
                else:
                    us = normalise_party(args.us or party_key(settings.country_code, settings.party_id))
                    party, counterparty, kind = us, normalise_party(args.party), "pair"
                    contracts = book.between(us, counterparty)
                if not contracts:
                    raise ContractError(f"no contracts for this {kind} statement")
                runs = repo.latest_runs(s, [c.id for c in contracts], period.label)
                missing = [c.id for c in contracts if c.id not in runs]
                if missing:
                    raise ContractError(f"no reconciliation run for {period.label} of contract(s) {', '.join(missing)}: "
                                        "run chargeledger reconcile first")
                cps = [repo.contract_period_of_run(s, runs[c.id], c) for c in contracts]
                content = st.build_statement(kind, party, counterparty, period.label, cps, corrects=args.corrects)
                sid = repo.issue_statement(s, content)
            print(f"issued statement {sid} ({kind} {party}{' / ' + counterparty if counterparty else ''} {period.label})")
            for t in content["totals"]:
                print(f"  {t['currency']} {t['party']}: {t['cdr_count']} CDRs, net {t['net_excl_vat']}, VAT {t['vat']}, "
                      f"incl {t['total_incl_vat']}, net position {t['net_position']}")
        elif args.action == "export":
            with Session() as s:
                row, content = repo.load_statement(s, args.statement_id)
            if args.format == "csv":
                st.export_csv(content, args.out)
            elif args.format == "parquet":
                st.export_parquet(content, args.out)
            else:
                st.export_html(content, args.out, statement_id=row.id, issued_at=row.issued_at.isoformat(),
                               digest=row.content_hash)
            print(f"statement {row.id} written to {args.out}")
        else:
            from sqlalchemy import select

            from storage.settlement_tables import SettlementStatement

            with Session() as s:
                for r in s.scalars(select(SettlementStatement).order_by(SettlementStatement.issued_at)):
                    print(f"{r.id}  {r.kind:4}  {r.party}  {r.counterparty or '-':7}  {r.period}  "
                          f"{r.issued_at.isoformat()}  corrects={r.corrects_id or '-'}  sha256={r.content_hash[:12]}")
    except (ContractError, repo.StatementError, ValueError) as exc:
        print(f"chargeledger statement: {exc}", file=sys.stderr)
        return 2
    return 0
