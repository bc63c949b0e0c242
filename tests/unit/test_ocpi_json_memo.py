"""The OCPI JSON writer reuses the text of a Tariff or CdrLocation it wrote before
(schemas/ocpi.py ``_memoised``) only while the instance is unchanged: every text below is
compared with the reference writer (tests/unit/ocpi_json_reference.py), after the lists
inside a frozen tariff were changed in every way a list can be changed."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpi_json_reference import reference_dumps, reference_model_dump_json
from schemas import ocpi
from schemas.ocpi import Cdr, CdrLocation, CdrToken, DayOfWeek, PriceComponent, Tariff, TariffElement, ocpi_dumps
from test_ocpi_json_writer import tariff_dicts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"
D = Decimal
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tariff() -> Tariff:
    return Tariff.model_validate({
        "country_code": "NL", "party_id": "CLG", "id": "T", "currency": "EUR", "last_updated": "2026-01-01T00:00:00Z",
        "tariff_alt_text": [{"language": "en", "text": "0.50 per session"}],
        "elements": [
            {"price_components": [{"type": "FLAT", "price": D("0.50"), "vat": D("21.0"), "step_size": 1}]},
            {"price_components": [{"type": "ENERGY", "price": D("0.35"), "step_size": 1}],
             "restrictions": {"start_time": "07:00", "day_of_week": ["MONDAY", "FRIDAY"]}},
        ],
        "energy_mix": {"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": D("50")}]},
    })


def memo_of(cls) -> dict:
    return ocpi._model_writer(cls).memo


def check(model) -> None:
    """Written as the reference writes it, alone and inside other values, twice."""
    for _ in range(2):
        assert model.model_dump_json() == reference_model_dump_json(model)
        assert ocpi_dumps([model, {"x": model}]) == reference_dumps([model, {"x": model}])


def test_an_unchanged_tariff_is_written_from_the_memo():
    t = tariff()
    check(t)
    entry = memo_of(Tariff)[id(t)]
    assert entry[0] is t and entry[1] == reference_model_dump_json(t)


def test_changed_lists_inside_a_frozen_tariff_are_written_as_they_are_now():
    t = tariff()
    check(t)
    same_value_other_text = TariffElement(price_components=[PriceComponent(type="FLAT", price=D("0.5"), step_size=1)])
    changes = [
        lambda: t.elements.append(t.elements[0]),                  # longer, same objects
        lambda: t.elements.pop(),                                  # back to the old length
        lambda: t.elements.__setitem__(0, same_value_other_text),  # an equal element, other text (0.5 vs 0.50)
        lambda: t.elements.reverse(),                              # same items, other order
        lambda: t.elements[0].price_components.append(PriceComponent(type="TIME", price=D("1.20"), step_size=60)),
        lambda: t.elements[0].restrictions.day_of_week.append(DayOfWeek.SUNDAY),  # a nested list of enums
        lambda: t.elements[0].restrictions.day_of_week.sort(),
        lambda: t.tariff_alt_text.clear(),
        lambda: t.energy_mix.energy_sources.extend(copy.copy(t.energy_mix.energy_sources)),
        lambda: t.energy_mix.energy_sources.__delitem__(0),
        lambda: t.elements.clear(),
    ]
    for change in changes:
        before = t.model_dump_json()
        change()
        check(t)
        assert before != t.model_dump_json()


def test_a_removed_item_cannot_be_mistaken_for_a_new_one():
    # the memo keeps the items it saw, so a freed item's id is not given to a new object
    t = tariff()
    check(t)
    for k in range(50):
        t.elements[1] = TariffElement(price_components=[PriceComponent(type="ENERGY", price=D(k), step_size=1)])
        check(t)


def test_an_item_moved_between_neighbouring_lists_is_seen():
    # the lists are remembered in the order [tariff_alt_text, elements, ...]: moving the
    # last alt text to the front of elements keeps the sequence of all items the same
    # (a DisplayText among the elements: the reference writer, through pydantic's
    # model_dump, writes it as {}, the compiled writer as the DisplayText it is; the memo
    # must give the compiled writer's text)
    t = tariff()
    check(t)
    t.elements.insert(0, t.tariff_alt_text.pop())
    unmemoised = ocpi._model_writer(Tariff).unmemoised
    for _ in range(2):
        out: list[str] = []
        unmemoised(t, out)
        assert t.model_dump_json() == "".join(out)
    assert t.model_dump_json().startswith('{"country_code":"NL","party_id":"CLG","id":"T","currency":"EUR",'
                                          '"tariff_alt_text":[],"elements":[{"language":"en"')


def test_instances_holding_changeable_values_are_written_every_time():
    zoned = Tariff.model_construct(**{**dict(tariff()), "last_updated": datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))})
    with_dict = Tariff.model_construct(**{**dict(tariff()), "tariff_alt_url": {"a": 1}})
    for model in (zoned, with_dict):
        check(model)
        assert id(model) not in memo_of(Tariff)


def test_the_memo_is_bounded():
    limit = ocpi._MEMO_LIMITS[Tariff]
    tariffs = [tariff().model_copy(update={"id": f"T{k}"}) for k in range(limit + 3)]
    for t in tariffs:
        check(t)
    assert len(memo_of(Tariff)) <= limit
    for t in tariffs[:5]:
        check(t)


def test_cdr_parts_from_the_memo_inside_cdrs():
    cdr = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text())
    other = cdr.model_copy(update={"id": "OTHER", "tariffs": [tariff()]})
    for c in (cdr, other, cdr, other):
        check(c)
    assert id(cdr.cdr_location) in memo_of(CdrLocation)
    assert CdrToken not in ocpi._MEMO_LIMITS  # written inline, every time


LIST_CHANGES = st.sampled_from(["append", "pop", "reverse", "replace", "clear_components", "days", "alt"])


@SETTINGS
@given(tariff_dicts(), st.lists(LIST_CHANGES, max_size=6))
def test_generated_tariffs_changed_between_writes(data, changes):
    t = Tariff.model_validate(data)
    check(t)
    for change in changes:
        elements = t.elements
        if change == "append":
            elements.append(elements[-1] if elements else
                            TariffElement.model_validate({"price_components": [{"type": "FLAT", "price": 1, "step_size": 0}]}))
        elif change == "pop" and elements:
            elements.pop(0)
        elif change == "reverse":
            elements.reverse()
        elif change == "replace" and elements:
            elements[0] = elements[0].model_copy()
        elif change == "clear_components" and elements:
            elements[-1].price_components.clear()
        elif change == "days":
            for el in elements:
                if el.restrictions is not None and el.restrictions.day_of_week is not None:
                    el.restrictions.day_of_week.append(DayOfWeek.MONDAY)
        elif change == "alt" and t.tariff_alt_text is not None:
            t.tariff_alt_text.append(t.tariff_alt_text[0] if t.tariff_alt_text else
                                     ocpi.DisplayText(language="en", text="\u00e9\"x"))
        check(t)
        cdr = Cdr.model_validate_json((FIXTURES / "cdr_example.json").read_text()).model_copy(update={"tariffs": [t, t]})
        check(cdr)
