"""From an OCPP MeterValue (1.6 or 2.0.1) to one version-neutral :class:`Sample`.

Which sampled value counts (OCPP 1.6 section 7.43 / 2.0.1 SampledValueType: "when phase is
absent, the measured value is interpreted as an overall value"):

* a value without ``phase`` is the total; if several (different locations), the one at
  ``Outlet`` (the default location) wins, else the first;
* when only per-phase values are present (``L1``, ``L2``, ``L3`` or ``L1-N``, ...), they
  are summed, one per phase (docs/ocpp-sessions.md: "sum the phases when the total is
  missing"). Current is summed too (OCPI 2.2.1 TariffRestrictions min/max_current: "sum
  of the current over all phases");
* signed values without a number (1.6 ``SignedData``) and other measurands are ignored.
  ``Energy.Active.Import.Interval`` is not a register and is not used for billing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from sessions.events import Sample

_PHASE_OF = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


def _pick(sampled: list[Any], get: Callable[[Any], Decimal | None]) -> tuple[Decimal | None, bool, Any]:
    totals = [s for s in sampled if s.phase is None and get(s) is not None]
    if totals:
        chosen = next((s for s in totals if s.location == "Outlet"), totals[0])
        return get(chosen), False, chosen
    per_phase: dict[str, Any] = {}
    for s in sampled:
        phase = _PHASE_OF.get(s.phase or "")
        if phase is not None and get(s) is not None and phase not in per_phase:
            per_phase[phase] = s
    if per_phase:
        total = sum((get(s) for s in per_phase.values()), Decimal(0))
        return total, True, next(iter(per_phase.values()))
    return None, False, None


def sample_of(meter_value: Any) -> Sample:
    """The :class:`Sample` of one 1.6 or 2.0.1 MeterValue model."""
    sampled = list(meter_value.sampled_value)
    energy, summed, energy_source = _pick(sampled, lambda s: s.energy_kwh())
    power, _, _ = _pick(sampled, lambda s: s.power_kw())
    current, _, _ = _pick(sampled, lambda s: s.current_a())
    context = energy_source.context if energy_source is not None else (sampled[0].context if sampled else None)
    return Sample(
        timestamp=meter_value.timestamp,
        energy_kwh=energy,
        power_kw=power,
        current_a=current,
        context=context,
        phases_summed=summed,
    )


def samples_of(meter_values: Iterable[Any]) -> tuple[Sample, ...]:
    return tuple(sample_of(mv) for mv in meter_values)
