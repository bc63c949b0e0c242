"""Finance reports over issued CDRs: revenue, energy, sessions, average price per kWh.

Rules (DESIGN.md "Domain rules"; mod_cdrs.asciidoc "Credit CDRs"):

* **Per currency, never summed across currencies**: currency is always a grouping key.
* **Credit CDRs net out**: a credit CDR carries the original's data with *negative*
  ``total_cost``, so costs simply add up; its ``total_energy`` is the original's (positive)
  energy, so energy is subtracted, and it counts as minus one session.
* **Periods in the caller's time zone**: a CDR belongs to the day / ISO week (Monday) /
  month in which its ``start_date_time`` falls in ``tz``; ``date_from`` / ``date_to`` are
  local dates in ``tz`` (from inclusive, to exclusive).
* **Rounding**: revenue is summed exactly, then rounded once to the currency's minor unit
  (ISO 4217, ROUND_HALF_UP). The average price per kWh is the *unrounded* revenue excl. VAT
  divided by the energy, rounded to 4 decimals (OCPI prices carry 4), ROUND_HALF_UP.
  Energy is the exact sum. ``revenue_incl_vat`` is null when a CDR of the group has no
  ``incl_vat`` (a partial sum would understate it).

PostgreSQL aggregates in SQL (``date_trunc`` on ``start_date_time AT TIME ZONE tz``); SQLite,
the embedded default, groups in Python (correct, not fast).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select, text
from sqlalchemy.orm import Session

from api.jsonutil import dumps
from storage.models import CdrRecord

PERIODS = ("day", "week", "month", "total")
DIMENSIONS = ("location", "evse", "party", "tariff")

#: ISO 4217 minor units that are not 2.
_MINOR_UNITS = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "CLF": 4, "UYW": 4,
}
PRICE_PER_KWH_EXPONENT = Decimal("0.0001")


def minor_unit(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, ROUND_HALF_UP (EUR 0.125 -> 0.13, -0.125 -> -0.13)."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ReportQuery:
    period: str  # day | week | month | total
    by: tuple[str, ...]  # subset of DIMENSIONS, in order
    tz: str
    date_from: date | None
    date_to: date | None
    currency: str | None

    def utc_bounds(self) -> tuple[datetime | None, datetime | None]:
        zone = ZoneInfo(self.tz)

        def at_midnight(d: date | None) -> datetime | None:
            if d is None:
                return None
            return datetime.combine(d, dtime(0), tzinfo=zone).astimezone(timezone.utc)

        return at_midnight(self.date_from), at_midnight(self.date_to)


def dimension_columns(by: Iterable[str]) -> list[tuple[str, Any]]:
    """Output column name and the CDR column behind it, per dimension."""
    cols: list[tuple[str, Any]] = []
    for d in by:
        if d == "location":
            cols.append(("location_id", CdrRecord.location_id))
        elif d == "evse":
            if not any(name == "location_id" for name, _ in cols):
                cols.append(("location_id", CdrRecord.location_id))
            cols.append(("evse_uid", CdrRecord.evse_uid))
        elif d == "party":
            cols.append(("emsp_country_code", CdrRecord.emsp_country_code))
            cols.append(("emsp_party_id", CdrRecord.emsp_party_id))
        elif d == "tariff":
            cols.append(("tariff_id", CdrRecord.tariff_id))
    return cols


def _bucket_of(local: datetime, period: str) -> date | None:
    d = local.date()
    if period == "day":
        return d
    if period == "week":
        return d - timedelta(days=d.weekday())
    if period == "month":
        return d.replace(day=1)
    return None


@dataclass
class _Acc:
    sessions: int = 0
    cdrs: int = 0
    energy: Decimal = Decimal(0)
    excl: Decimal = Decimal(0)
    incl: Decimal = Decimal(0)
    incl_count: int = 0


def _filters(q: ReportQuery) -> list:
    start, end = q.utc_bounds()
    conditions = []
    if start is not None:
        conditions.append(CdrRecord.start_date_time >= start)
    if end is not None:
        conditions.append(CdrRecord.start_date_time < end)
    if q.currency:
        conditions.append(CdrRecord.currency == q.currency.upper())
    return conditions


def _aggregate_sql(db: Session, q: ReportQuery, dims: list[tuple[str, Any]], extra: list) -> list[tuple]:
    """PostgreSQL: one GROUP BY query; bucket computed in a subquery (binds used once)."""
    sign = case((CdrRecord.credit.is_(True), -1), else_=1)
    if q.period == "total":
        bucket = literal(None).label("bucket")
    else:
        bucket = func.date_trunc(q.period, func.timezone(q.tz, CdrRecord.start_date_time)).label("bucket")
    inner = select(
        bucket,
        CdrRecord.currency.label("currency"),
        *[col.label(name) for name, col in dims],
        sign.label("sign"),
        CdrRecord.total_energy.label("energy"),
        CdrRecord.total_cost_excl_vat.label("excl"),
        CdrRecord.total_cost_incl_vat.label("incl"),
    ).where(*_filters(q), *extra).subquery()
    keys = [inner.c.bucket, inner.c.currency, *[inner.c[name] for name, _ in dims]]
    stmt = select(
        *keys,
        func.sum(inner.c.sign),
        func.count(),
        func.sum(inner.c.energy * inner.c.sign),
        func.sum(inner.c.excl),
        func.sum(inner.c.incl),
        func.count(inner.c.incl),
    ).group_by(*keys).order_by(*[k.asc().nulls_first() for k in keys])
    out = []
    for row in db.execute(stmt):
        bucket_value = row[0]
        if isinstance(bucket_value, datetime):
            bucket_value = bucket_value.date()
        out.append((bucket_value, *row[1:]))
    return out


def _aggregate_python(db: Session, q: ReportQuery, dims: list[tuple[str, Any]], extra: list) -> list[tuple]:
    """Any database: stream the CDR columns and group in Python."""
    zone = ZoneInfo(q.tz)
    stmt = select(
        CdrRecord.start_date_time, CdrRecord.currency, *[col for _, col in dims], CdrRecord.credit,
        CdrRecord.total_energy, CdrRecord.total_cost_excl_vat, CdrRecord.total_cost_incl_vat,
    ).where(*_filters(q), *extra)
    groups: dict[tuple, _Acc] = {}
    n = len(dims)
    for row in db.execute(stmt.execution_options(yield_per=5000)):
        start = row[0]
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        key = (_bucket_of(start.astimezone(zone), q.period), row[1], *row[2:2 + n])
        credit, energy, excl, incl = row[2 + n], row[3 + n], row[4 + n], row[5 + n]
        acc = groups.setdefault(key, _Acc())
        sign = -1 if credit else 1
        acc.sessions += sign
        acc.cdrs += 1
        acc.energy += Decimal(energy) * sign
        acc.excl += Decimal(excl)
        if incl is not None:
            acc.incl += Decimal(incl)
            acc.incl_count += 1

    def sort_key(k):
        return tuple((v is not None, v if v is not None else "") for v in k)

    return [
        (*k, a.sessions, a.cdrs, a.energy, a.excl, a.incl if a.incl_count else None, a.incl_count)
        for k, a in sorted(groups.items(), key=lambda kv: sort_key(kv[0]))
    ]


def _metrics(currency: str, sessions, cdrs, energy, excl, incl, incl_count) -> dict:
    energy = Decimal(energy or 0)
    excl = Decimal(excl or 0)
    avg = None
    if energy != 0:
        avg = (excl / energy).quantize(PRICE_PER_KWH_EXPONENT, rounding=ROUND_HALF_UP)
    return {
        "sessions": int(sessions or 0),
        "cdrs": int(cdrs or 0),
        "energy_kwh": energy.normalize() if energy != 0 else Decimal(0),
        "revenue_excl_vat": round_money(excl, currency),
        "revenue_incl_vat": round_money(Decimal(incl), currency) if incl is not None and incl_count == cdrs else None,
        "avg_price_per_kwh_excl_vat": avg,
    }


Groups = dict[tuple, list]  # (bucket, currency, *dims) -> [sessions, cdrs, energy, excl, incl, incl_count]


def compute_groups(db: Session, q: ReportQuery, extra: list | None = None) -> Groups:
    """Sums per group key for the CDRs matching ``q`` (and ``extra`` conditions)."""
    dims = dimension_columns(q.by)
    aggregate = _aggregate_sql if db.get_bind().dialect.name == "postgresql" else _aggregate_python
    n = len(dims)
    groups: Groups = {}
    for r in aggregate(db, q, dims, extra or []):
        sessions, cdrs, energy, excl, incl, incl_count = r[2 + n:]
        groups[tuple(r[:2 + n])] = [int(sessions or 0), int(cdrs or 0), Decimal(energy or 0), Decimal(excl or 0),
                                    Decimal(incl or 0), int(incl_count or 0)]
    return groups


def _zero() -> list:
    """An empty accumulator: sessions, CDRs, energy, excl. VAT, incl. VAT, CDRs with incl. VAT."""
    return [0, 0, Decimal(0), Decimal(0), Decimal(0), 0]


def merge_groups(into: Groups, delta: Groups) -> Groups:
    """``into`` plus ``delta`` (sums add: CDRs are only ever added, never changed)."""
    merged = {k: list(v) for k, v in into.items()}
    for key, values in delta.items():
        acc = merged.setdefault(key, _zero())
        for i, v in enumerate(values):
            acc[i] += v
    return merged


def _sort_key(key: tuple) -> tuple:
    return tuple((v is not None, v if v is not None else "") for v in key)


def render_report(q: ReportQuery, groups: Groups) -> dict:
    """The report as plain data (rows + per-currency totals), rounded as the module says."""
    dims = dimension_columns(q.by)
    n = len(dims)
    rows = []
    totals: dict[str, list] = {}
    for key in sorted(groups, key=_sort_key):
        sessions, cdrs, energy, excl, incl, incl_count = groups[key]
        bucket, currency, dim_values = key[0], key[1], key[2:2 + n]
        item: dict[str, Any] = {}
        if q.period != "total":
            item["period_start"] = bucket.isoformat() if bucket is not None else None
        item["currency"] = currency
        for (name, _), value in zip(dims, dim_values):
            item[name] = value
        item.update(_metrics(currency, sessions, cdrs, energy, excl, incl if incl_count else None, incl_count))
        rows.append(item)
        t = totals.setdefault(currency, _zero())
        for i, v in enumerate(groups[key]):
            t[i] += v
    return {
        "period": q.period,
        "by": list(q.by),
        "tz": q.tz,
        "date_from": q.date_from.isoformat() if q.date_from else None,
        "date_to": q.date_to.isoformat() if q.date_to else None,
        "rows": rows,
        "totals": [
            {"currency": c, **_metrics(c, t[0], t[1], t[2], t[3], t[4] if t[5] else None, t[5])}
            for c, t in sorted(totals.items())
        ],
    }


def build_report(db: Session, q: ReportQuery) -> dict:
    return render_report(q, compute_groups(db, q))


def csv_columns(q: ReportQuery) -> list[str]:
    cols = [] if q.period == "total" else ["period_start"]
    cols.append("currency")
    cols += [name for name, _ in dimension_columns(q.by)]
    cols += ["sessions", "cdrs", "energy_kwh", "revenue_excl_vat", "revenue_incl_vat", "avg_price_per_kwh_excl_vat"]
    return cols


def data_version(db: Session) -> Any:
    """Changes whenever a CDR is added: CDRs are insert-only, so the highest pk is enough."""
    # Core, prebuilt text: this runs on every cached report request, the ORM layers cost more
    # than the index lookup itself.
    return db.connection().execute(_VERSION_SQL).scalar_one()


_VERSION_SQL = text("SELECT max(pk) FROM cdrs")


@dataclass
class _Entry:
    version: Any  # highest CDR pk included
    computed_at: float  # monotonic time of the last full computation
    groups: Groups
    report: dict
    rendered: bytes


class ReportCache:
    """Reports kept per query and brought up to date incrementally.

    CDRs are insert-only (a correction is a new credit CDR), so when the CDR table's version
    (its highest pk) moved from v1 to v2, the report is the cached sums plus the sums of the
    CDRs with v1 < pk <= v2: a few rows, read through the primary key. Every ``ttl_s`` the
    report is recomputed in full, which also picks up a CDR whose transaction committed
    after a higher pk had been seen (so a report is at most ``ttl_s`` behind in that race).
    Concurrent requests for one report do not each compute it: the first one does, the others
    wait for it when there is nothing yet, or get the previous state while it is updated.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[ReportQuery, _Entry] = {}
        self._locks: dict[ReportQuery, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, db: Session, q: ReportQuery) -> tuple[dict, bytes]:
        """(report, its JSON bytes) for ``q``."""
        if self.ttl_s <= 0:
            report = build_report(db, q)
            return report, dumps(report).encode("utf-8")
        version = data_version(db)
        entry = self._entries.get(q)
        if entry and entry.version == version and time.monotonic() - entry.computed_at < self.ttl_s:
            return entry.report, entry.rendered
        with self._guard:
            lock = self._locks.setdefault(q, threading.Lock())
        if entry is not None and not lock.acquire(blocking=False):
            # Another thread is updating this report: answer with the previous state now
            # rather than queueing behind it (it is at most that computation behind).
            return entry.report, entry.rendered
        if entry is None:
            lock.acquire()
        try:
            entry = self._entries.get(q)
            fresh = entry is not None and time.monotonic() - entry.computed_at < self.ttl_s
            if fresh and entry.version == version:
                return entry.report, entry.rendered
            if fresh and entry.version is not None and version is not None and version > entry.version:
                delta = compute_groups(db, q, [CdrRecord.pk > entry.version, CdrRecord.pk <= version])
                groups, computed_at = merge_groups(entry.groups, delta), entry.computed_at
            else:
                groups, computed_at = compute_groups(db, q, [CdrRecord.pk <= version] if version else []), \
                    time.monotonic()
            report = render_report(q, groups)
            rendered = dumps(report).encode("utf-8")
            if len(self._entries) > 1000:
                self._entries.clear()
            self._entries[q] = _Entry(version, computed_at, groups, report, rendered)
            return report, rendered
        finally:
            lock.release()
