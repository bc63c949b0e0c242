"""``chargeledger tariff check``: what in a tariff parses but will surprise someone.

Checks (issue "tariff linter"): hours of the week where a priced dimension has no
matching element (free by accident); elements, or components, hidden entirely by the
elements before them; step_size on FLAT; a reservation restriction on a component other
than FLAT/TIME (mod_tariffs TariffRestrictions.reservation: "A reservation can only have:
FLAT and TIME"); min_price above max_price; and restrictions that can never hold.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.ocpi import Tariff, TariffDimensionType

from .restrictions import (
    SECONDS_PER_DAY,
    CompiledElement,
    PeriodContext,
    compile_tariff,
    restrictions_hold,
)

DAY_NAMES = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
#: A Monday, used to turn (weekday, time of day) into a local datetime for evaluation.
_WEEK_START = datetime(2024, 1, 1)
_PRICED = (TariffDimensionType.ENERGY, TariffDimensionType.TIME, TariffDimensionType.PARKING_TIME)
_MAX_COMBINATIONS = 4096


@dataclass(frozen=True, slots=True)
class LintFinding:
    code: str
    message: str
    element_index: int | None = None

    def __str__(self) -> str:
        where = f"element {self.element_index}: " if self.element_index is not None else ""
        return f"{self.code}: {where}{self.message}"


def lint_tariff(tariff: Tariff) -> list[LintFinding]:
    """Every finding for ``tariff``, in a stable order."""
    compiled = compile_tariff(tariff)
    findings: list[LintFinding] = []
    findings += check_min_price_above_max_price(tariff)
    findings += check_validity(tariff)
    findings += check_step_size_on_flat(tariff)
    findings += check_reservation_components(tariff)
    findings += check_impossible_restrictions(compiled.elements)
    findings += check_hidden_elements(compiled.elements)
    findings += check_uncovered_hours(compiled.elements)
    return findings


def check_min_price_above_max_price(tariff: Tariff) -> list[LintFinding]:
    lo, hi = tariff.min_price, tariff.max_price
    if lo is None or hi is None:
        return []
    out = []
    if lo.excl_vat > hi.excl_vat:
        out.append(LintFinding("min_above_max", f"min_price excl_vat {lo.excl_vat} is above max_price excl_vat {hi.excl_vat}"))
    if lo.incl_vat is not None and hi.incl_vat is not None and lo.incl_vat > hi.incl_vat:
        out.append(LintFinding("min_above_max", f"min_price incl_vat {lo.incl_vat} is above max_price incl_vat {hi.incl_vat}"))
    return out


def check_validity(tariff: Tariff) -> list[LintFinding]:
    if tariff.start_date_time and tariff.end_date_time and tariff.end_date_time <= tariff.start_date_time:
        return [LintFinding("empty_validity", "end_date_time is not after start_date_time: the tariff is never valid")]
    return []


def check_step_size_on_flat(tariff: Tariff) -> list[LintFinding]:
    """FLAT has no unit for step_size (mod_tariffs TariffDimensionType); anything above 1
    suggests the author meant another dimension."""
    out = []
    for i, el in enumerate(tariff.elements):
        for c in el.price_components:
            if c.type is TariffDimensionType.FLAT and c.step_size > 1:
                out.append(LintFinding("step_size_on_flat", f"FLAT component has step_size {c.step_size}; FLAT has no unit to step", i))
    return out


def check_reservation_components(tariff: Tariff) -> list[LintFinding]:
    out = []
    for i, el in enumerate(tariff.elements):
        if el.restrictions is None or el.restrictions.reservation is None:
            continue
        for c in el.price_components:
            if c.type not in (TariffDimensionType.FLAT, TariffDimensionType.TIME):
                out.append(LintFinding(
                    "reservation_component",
                    f"{c.type.value} component in a reservation element is never used (a reservation has only FLAT and TIME)",
                    i,
                ))
    return out


def _minutes(el: CompiledElement) -> frozenset[int] | None:
    """The minutes of the day where the element's time window holds (None = all day)."""
    if el.start_s is None and el.end_s is None:
        return None
    start = (el.start_s or 0) // 60
    end = (el.end_s if el.end_s is not None else SECONDS_PER_DAY) // 60
    if start <= end:
        return frozenset(range(start, end))
    return frozenset(range(start, 1440)) | frozenset(range(0, end))


def check_impossible_restrictions(elements) -> list[LintFinding]:
    out = []
    for el in elements:
        problems = []
        window = _minutes(el)
        if window is not None and not window:
            problems.append("start_time equals end_time (empty window)")
        if el.start_date and el.end_date and el.end_date <= el.start_date:
            problems.append("end_date is not after start_date")
        for name in ("kwh", "current", "power", "duration"):
            lo, hi = getattr(el, f"min_{name}"), getattr(el, f"max_{name}")
            if lo is not None and hi is not None and hi <= lo:
                problems.append(f"max_{name} {hi} is not above min_{name} {lo}")
        if el.days is not None and not el.days:
            problems.append("empty day_of_week")
        if problems:
            out.append(LintFinding("never_active", "; ".join(problems), el.index))
    return out


def _covers(a: CompiledElement, b: CompiledElement) -> bool:
    """Every restriction of ``a`` holds whenever all of ``b``'s do (a is at most as strict)."""
    if a.reservation != b.reservation:
        return False
    wa, wb = _minutes(a), _minutes(b)
    if wa is not None and (wb is None or not wb <= wa):
        return False
    if a.days is not None and (b.days is None or not b.days <= a.days):
        return False
    if a.start_date is not None and (b.start_date is None or b.start_date < a.start_date):
        return False
    if a.end_date is not None and (b.end_date is None or b.end_date > a.end_date):
        return False
    for name in ("kwh", "current", "power", "duration"):
        a_lo, b_lo = getattr(a, f"min_{name}"), getattr(b, f"min_{name}")
        a_hi, b_hi = getattr(a, f"max_{name}"), getattr(b, f"max_{name}")
        if a_lo is not None and (b_lo is None or b_lo < a_lo):
            return False
        if a_hi is not None and (b_hi is None or b_hi > a_hi):
            return False
    return True


def check_hidden_elements(elements) -> list[LintFinding]:
    """Rule 1: an element whose every component is always taken by an earlier element
    for that dimension (with restrictions at most as strict) never prices anything."""
    out = []
    for j, el in enumerate(elements):
        hidden: dict[TariffDimensionType, int] = {}
        for dim in el.components:
            for earlier in elements[:j]:
                if dim in earlier.components and _covers(earlier, el):
                    hidden[dim] = earlier.index
                    break
        if not hidden:
            continue
        if len(hidden) == len(el.components):
            by = sorted(set(hidden.values()))
            out.append(LintFinding("hidden_element", f"never used: every component is taken first by element(s) {', '.join(map(str, by))}", j))
        else:
            for dim, by in hidden.items():
                out.append(LintFinding("hidden_component", f"its {dim.value} component is never used: element {by} comes first", j))
    return out


def _samples(thresholds) -> list:
    return [Decimal(0)] + sorted(set(thresholds) - {Decimal(0)})


def check_uncovered_hours(elements) -> list[LintFinding]:
    """Hours of the week where a dimension the tariff prices has no matching element
    (mod_tariffs: "there will be no costs for that Tariff Dimension"). The week is cut at
    every time boundary; power, current, energy and duration are sampled at 0 and at every
    threshold. Elements limited by start_date/end_date are left out: the finding then tells
    what happens outside their dates."""
    out = []
    for dim in _PRICED:
        candidates = [el for el in elements if dim in el.components and el.reservation is None]
        if not candidates:
            continue
        undated = [el for el in candidates if el.start_date is None and el.end_date is None]
        dated = len(undated) < len(candidates)
        bounds = sorted({0} | {s % SECONDS_PER_DAY for el in undated for s in (el.start_s, el.end_s) if s is not None})
        kinds = {
            "power": _samples(v for el in undated for v in (el.min_power, el.max_power) if v is not None),
            "current": _samples(v for el in undated for v in (el.min_current, el.max_current) if v is not None),
            "kwh": _samples(v for el in undated for v in (el.min_kwh, el.max_kwh) if v is not None),
            "duration": _samples(Decimal(v) for el in undated for v in (el.min_duration, el.max_duration) if v is not None),
        }
        used = {k: v for k, v in kinds.items() if len(v) > 1}
        combos = list(itertools.islice(itertools.product(*used.values()), _MAX_COMBINATIONS))
        gaps: dict[str, dict[int, list[int]]] = {}
        for combo in combos:
            values = dict(zip(used.keys(), combo))
            condition = ", ".join(f"{k} {_fmt(k, v)}" for k, v in values.items())
            for day in range(7):
                for slot, start_s in enumerate(bounds):
                    local = _WEEK_START.replace(day=1 + day, hour=start_s // 3600, minute=(start_s % 3600) // 60)
                    ctx = PeriodContext(
                        local,
                        values.get("kwh", Decimal(0)),
                        values.get("duration", Decimal(0)),
                        values.get("power", Decimal(0)),
                        values.get("current", Decimal(0)),
                    )
                    if not any(restrictions_hold(el, ctx) for el in undated):
                        gaps.setdefault(condition, {}).setdefault(day, []).append(slot)
        for condition, days in gaps.items():
            where = _describe_week(days, bounds)
            message = f"{dim.value} has no matching element {where}"
            if condition:
                message += f" (at {condition})"
            if dated:
                message += " outside the dates of the date-limited elements"
            out.append(LintFinding("free_hours", message + ": free of charge then"))
    return out


def _fmt(kind: str, value: Decimal) -> str:
    unit = {"power": "kW", "current": "A", "kwh": "kWh", "duration": "s"}[kind]
    return f"{value} {unit}"


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{(seconds % 3600) // 60:02d}"


def _describe_week(days: dict[int, list[int]], bounds: list[int]) -> str:
    by_pattern: dict[str, list[int]] = {}
    for day, slots in sorted(days.items()):
        ranges = []
        for slot in slots:
            start = bounds[slot]
            end = bounds[slot + 1] if slot + 1 < len(bounds) else SECONDS_PER_DAY
            if ranges and ranges[-1][1] == start:
                ranges[-1][1] = end
            else:
                ranges.append([start, end])
        text = ", ".join(f"{_hhmm(a)}-{'24:00' if b == SECONDS_PER_DAY else _hhmm(b)}" for a, b in ranges)
        by_pattern.setdefault(text, []).append(day)
    parts = []
    for text, day_list in by_pattern.items():
        names = "+".join(DAY_NAMES[d] for d in day_list) if len(day_list) < 7 else "every day"
        parts.append(f"{names} {text}")
    return "on " + "; ".join(parts)
