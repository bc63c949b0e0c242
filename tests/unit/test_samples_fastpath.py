"""``sessions.samples.sample_of`` picks the values of a MeterValue like before its fast path.

The reference below is the function as it was (one general pass with per-phase sums); the
fast path (no billed value with a phase) and the per-phase path must give the same Sample
(values with their exact Decimal digits, context, phases_summed, fields set) for simulated
traffic and for generated meter values of both OCPP versions: totals at several locations,
per-phase values, other measurands, signed values, units and multipliers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ocpp16, ocpp201
from schemas.ocpp import InvalidMessage, validate_call
from sessions.events import Sample, trusted
from sessions.samples import _PHASE_OF, _SLOT_OF, sample_of, samples_of
from test_ocpp_fastbuild import T, state
from traffic_support import simulated_envelopes


def reference_sample_of(meter_value: Any) -> Sample:
    """sessions.samples.sample_of before the fast path (a8d8435), verbatim."""
    fields = meter_value.__dict__
    sampled = fields["sampled_value"]
    first_total: list[Any] = [None, None, None]
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


def test_simulated_traffic_samples_as_before():
    checked = 0
    for e in simulated_envelopes(150, 11, "SMP"):
        try:
            model = validate_call(e.ocpp_version, e.action, e.payload)
        except InvalidMessage:
            continue
        for field in ("meter_value", "transaction_data"):
            meter_values = getattr(model, field, None) if model is not None else None
            if meter_values:
                got = samples_of(meter_values)
                assert type(got) is tuple
                assert [state(s) for s in got] == [state(reference_sample_of(mv)) for mv in meter_values]
                assert list(got) == [reference_sample_of(mv) for mv in meter_values]
                checked += len(got)
    assert checked > 1000


MEASURANDS = st.sampled_from([None, "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
                              "Voltage", "Energy.Active.Import.Interval"])
PHASES = st.sampled_from([None, None, None, "L1", "L2", "L3", "L1-N", "L2-N", "N", "L1-L2"])
LOCATIONS = st.sampled_from([None, "Outlet", "Inlet", "Cable", "EV", "Body"])
CONTEXTS = st.sampled_from([None, "Sample.Periodic", "Transaction.Begin", "Transaction.End"])


@st.composite
def sampled_16(draw) -> dict[str, Any]:
    measurand = draw(MEASURANDS)
    unit = {None: ["Wh", "kWh"], "Energy.Active.Import.Register": ["Wh", "kWh"], "Power.Active.Import": ["W", "kW"],
            "Current.Import": ["A"]}.get(measurand, ["V", "Wh"])
    out: dict[str, Any] = {"value": draw(st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True))}
    for key, value in (("measurand", measurand), ("phase", draw(PHASES)), ("location", draw(LOCATIONS)),
                       ("context", draw(CONTEXTS)), ("unit", draw(st.sampled_from([None, *unit])))):
        if value is not None:
            out[key] = value
    if draw(st.integers(0, 9)) == 0:
        out["format"] = "SignedData"
    return out


@st.composite
def sampled_201(draw) -> dict[str, Any]:
    measurand = draw(MEASURANDS)
    unit = {None: ["Wh", "kWh"], "Energy.Active.Import.Register": ["Wh", "kWh"], "Power.Active.Import": ["W", "kW"],
            "Current.Import": ["A"]}.get(measurand, ["V", "Wh"])
    out: dict[str, Any] = {"value": draw(st.one_of(st.integers(0, 10**7), st.floats(0, 1e6)))}
    for key, value in (("measurand", measurand), ("phase", draw(PHASES)), ("location", draw(LOCATIONS)),
                       ("context", draw(CONTEXTS))):
        if value is not None:
            out[key] = value
    uom = {}
    if draw(st.booleans()):
        uom["unit"] = draw(st.sampled_from(unit))
    if draw(st.booleans()):
        uom["multiplier"] = draw(st.integers(-2, 2))
    if uom:
        out["unitOfMeasure"] = uom
    return out


@settings(max_examples=600, deadline=None)
@given(version=st.sampled_from(["1.6", "2.0.1"]), data=st.data())
def test_generated_meter_values_sample_as_before(version, data):
    module = ocpp16 if version == "1.6" else ocpp201
    sampled = data.draw(st.lists(sampled_16() if version == "1.6" else sampled_201(), min_size=1, max_size=7))
    meter_value = module.MeterValue.model_validate({"timestamp": T, "sampledValue": sampled})
    assert state(sample_of(meter_value)) == state(reference_sample_of(meter_value))


def test_edge_cases_sample_as_before():
    cases_16 = [
        [{"value": "5", "location": "Inlet"}, {"value": "6", "location": "Outlet"}, {"value": "7"}],
        [{"value": "5", "location": "Inlet"}, {"value": "6", "location": "Cable"}],
        [{"value": "1", "phase": "L1"}, {"value": "2", "phase": "L2"}, {"value": "3", "phase": "L1-N"}],
        [{"value": "1", "phase": "L1"}, {"value": "9"}],
        [{"value": "1", "phase": "N"}],
        [{"value": "x", "format": "SignedData"}, {"value": "2", "context": "Transaction.End"}],
        [{"value": "230", "measurand": "Voltage", "context": "Trigger"}],
        [{"value": "230", "measurand": "Voltage", "phase": "L1"}, {"value": "3", "measurand": "Power.Active.Import",
                                                                   "unit": "kW"}],
        [{"value": "16", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
         {"value": "15", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
         {"value": "12", "measurand": "Energy.Active.Import.Register", "unit": "kWh", "location": "EV"}],
    ]
    for sampled in cases_16:
        meter_value = ocpp16.MeterValue.model_validate({"timestamp": T, "sampledValue": sampled})
        assert state(sample_of(meter_value)) == state(reference_sample_of(meter_value)), sampled
    empty = ocpp16.MeterValue.model_construct(timestamp=T, sampled_value=())
    assert state(sample_of(empty)) == state(reference_sample_of(empty))


def test_samples_of_any_number_of_meter_values():
    values = [ocpp16.MeterValue.model_validate({"timestamp": T, "sampledValue": [{"value": str(i)}]}) for i in range(3)]
    for meter_values in ((), tuple(values[:1]), tuple(values[:2]), tuple(values), values, iter(values)):
        expected = [reference_sample_of(mv) for mv in (values if not isinstance(meter_values, tuple) else meter_values)]
        got = samples_of(meter_values)
        assert type(got) is tuple and [state(s) for s in got] == [state(s) for s in expected]
