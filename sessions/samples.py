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

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from schemas.ocpp_base import (
    CURRENT_IMPORT,
    ENERGY_IMPORT_REGISTER,
    POWER_IMPORT,
    NotFast,
    fast_utc,
    known_utc,
    set_dict as _set_dict,
    set_extra as _set_extra,
    set_fields_set as _set_fields_set,
    set_private as _set_private,
)
from sessions.events import Sample, trusted

_PHASE_OF = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}
#: The measurands a Sample keeps, by their slot: energy, power, current.
_SLOT_OF = {ENERGY_IMPORT_REGISTER: 0, POWER_IMPORT: 1, CURRENT_IMPORT: 2}
_new = object.__new__
#: The fields set of every Sample built here, shared as :func:`sessions.events.trusted` shares it
#: (a frozen model: nothing adds to it; ``model_copy`` copies it first).
_SAMPLE_FIELDS_SET = set(Sample.model_fields)
assert tuple(Sample.model_fields) == ("timestamp", "energy_kwh", "power_kw", "current_a", "context", "phases_summed")
assert not Sample.__private_attributes__


def sample_of(meter_value: Any) -> Sample:
    """The :class:`Sample` of one 1.6 or 2.0.1 MeterValue model.

    Per measurand: the total (no ``phase``) at ``Outlet``, else the first total, else the
    sum of the first value of each phase. The common case, no billed value with a
    ``phase``, in one plain pass (the first total, replaced once by the first at
    ``Outlet``); a meter value with per-phase values goes to :func:`_sample_with_phases`.
    """
    fields = meter_value.__dict__  # the models' fields (one attribute lookup instead of one per field)
    sampled = fields["sampled_value"]
    energy = power = current = energy_context = None
    energy_outlet = power_outlet = current_outlet = False
    slot_of = _SLOT_OF.get
    for s in sampled:
        values = s.__dict__
        slot = slot_of(values["measurand"])
        if slot is None:
            continue
        value = s.__pydantic_private__["_converted"]  # SampledValue.converted
        if value is None:
            continue
        if values["phase"] is not None:
            return _sample_with_phases(meter_value)
        if slot == 0:
            if energy is None:
                energy, energy_outlet, energy_context = value, values["location"] == "Outlet", values["context"]
            elif not energy_outlet and values["location"] == "Outlet":
                energy, energy_outlet, energy_context = value, True, values["context"]
        elif slot == 1:
            if power is None:
                power, power_outlet = value, values["location"] == "Outlet"
            elif not power_outlet and values["location"] == "Outlet":
                power, power_outlet = value, True
        elif current is None:
            current, current_outlet = value, values["location"] == "Outlet"
        elif not current_outlet and values["location"] == "Outlet":
            current, current_outlet = value, True
    if energy is None:
        energy_context = sampled[0].__dict__["context"] if sampled else None
    sample = _new(Sample)  # trusted(Sample, ...), inlined
    _set_dict(sample, {"timestamp": fields["timestamp"], "energy_kwh": energy, "power_kw": power,
                       "current_a": current, "context": energy_context, "phases_summed": False})
    _set_fields_set(sample, _SAMPLE_FIELDS_SET)
    _set_extra(sample, None)
    _set_private(sample, None)
    return sample


def _sample_with_phases(meter_value: Any) -> Sample:
    """:func:`sample_of` for any meter value (per-phase values included): one pass over the
    sampled values, then per measurand the pick of the module docstring."""
    fields = meter_value.__dict__  # the models' fields (one attribute lookup instead of one per field)
    sampled = fields["sampled_value"]
    first_total: list[Any] = [None, None, None]  # (sampled value, converted) per slot
    outlet_total: list[Any] = [None, None, None]
    per_phase: list[dict[str, Any] | None] = [None, None, None]
    slot_of = _SLOT_OF.get
    for s in sampled:
        values = s.__dict__
        slot = slot_of(values["measurand"])
        if slot is None:
            continue
        value = s.converted
        if value is None:
            continue
        phase = values["phase"]
        if phase is None:
            if first_total[slot] is None:
                first_total[slot] = (s, value)
            if outlet_total[slot] is None and values["location"] == "Outlet":
                outlet_total[slot] = (s, value)
        else:
            name = _PHASE_OF.get(phase)
            if name is not None:
                phases = per_phase[slot]
                if phases is None:
                    phases = per_phase[slot] = {}
                if name not in phases:
                    phases[name] = (s, value)
    picked: list[Decimal | None] = [None, None, None]
    energy_source: Any = None
    summed = False
    for slot in (0, 1, 2):
        chosen = outlet_total[slot] or first_total[slot]
        if chosen is not None:
            picked[slot] = chosen[1]
            source = chosen[0]
            phase_sum = False
        elif per_phase[slot]:
            phases = per_phase[slot]
            total = Decimal(0)
            for _, value in phases.values():
                total = total + value
            picked[slot] = total
            source = next(iter(phases.values()))[0]
            phase_sum = True
        else:
            continue
        if slot == 0:
            energy_source, summed = source, phase_sum
    if energy_source is not None:
        context = energy_source.context
    else:
        context = sampled[0].context if sampled else None
    return trusted(Sample, {
        "timestamp": fields["timestamp"],
        "energy_kwh": picked[0],
        "power_kw": picked[1],
        "current_a": picked[2],
        "context": context,
        "phases_summed": summed,
    })


def samples_of(meter_values: Iterable[Any]) -> tuple[Sample, ...]:
    if type(meter_values) is tuple and len(meter_values) == 1:  # the usual message: one meter value
        return (sample_of(meter_values[0]),)
    return tuple(map(sample_of, meter_values))


def sample_builder(context_at: int, measurand_at: int, phase_at: int, location_at: int,
                   converted_at: int) -> Any:
    """The one-pass builder of a MeterValue's :class:`Sample` straight from its sampled
    values' parts (``schemas.ocpp16.sampled_value_parts`` / ``schemas.ocpp201``'s: tuples,
    the positions of context, measurand, phase, location and converted value given), for
    :mod:`sessions.calls`: :func:`sample_of` of the MeterValue model the models' one pass
    builds from the same values, without the models. A billed value with a ``phase``:
    NotFast (the models and :func:`sample_of` decide). tests/unit/test_session_calls.py
    compares both."""

    def build(data: dict[str, Any], timestamp: str, sampled: list[tuple]) -> Sample:
        energy = power = current = energy_context = None
        energy_outlet = power_outlet = current_outlet = False
        slot_of = _SLOT_OF.get
        for parts in sampled:
            slot = slot_of(parts[measurand_at])
            if slot is None:
                continue
            value = parts[converted_at]
            if value is None:
                continue
            if parts[phase_at] is not None:
                raise NotFast
            if slot == 0:
                if energy is None:
                    energy, energy_outlet, energy_context = value, parts[location_at] == "Outlet", parts[context_at]
                elif not energy_outlet and parts[location_at] == "Outlet":
                    energy, energy_outlet, energy_context = value, True, parts[context_at]
            elif slot == 1:
                if power is None:
                    power, power_outlet = value, parts[location_at] == "Outlet"
                elif not power_outlet and parts[location_at] == "Outlet":
                    power, power_outlet = value, True
            elif current is None:
                current, current_outlet = value, parts[location_at] == "Outlet"
            elif not current_outlet and parts[location_at] == "Outlet":
                current, current_outlet = value, True
        if energy is None:
            energy_context = sampled[0][context_at] if sampled else None
        sample = _new(Sample)  # trusted(Sample, ...), inlined
        _set_dict(sample, {"timestamp": known_utc(timestamp) or fast_utc(timestamp), "energy_kwh": energy,
                           "power_kw": power, "current_a": current, "context": energy_context,
                           "phases_summed": False})
        _set_fields_set(sample, _SAMPLE_FIELDS_SET)
        _set_extra(sample, None)
        _set_private(sample, None)
        return sample

    return build
