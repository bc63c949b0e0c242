"""Shortcuts of the CDR path (issue 4, fourth round) against the code they stand for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

import schemas.ocpi as ocpi

UTC = timezone.utc


def _isoformat_text(value: datetime) -> str:
    """The writer's UTC datetime text as it was: isoformat() without "+00:00", trailing
    zeros of a fraction dropped, "Z"."""
    text = value.isoformat()[:-6]
    return (text.rstrip("0") if value.microsecond else text) + "Z"


@settings(max_examples=600, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_utc_text_is_the_isoformat_text(naive):
    value = naive.replace(tzinfo=UTC)
    assert ocpi._utc_text(value) == _isoformat_text(value)
    assert ocpi.format_ocpi_datetime(value) == _isoformat_text(value)


def test_utc_text_examples_and_day_memo_bound():
    assert ocpi._utc_text(datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=UTC)) == "2016-12-29T17:45:09.2Z"
    assert ocpi._utc_text(datetime(2016, 12, 29, 7, 5, 9, 10, tzinfo=UTC)) == "2016-12-29T07:05:09.00001Z"
    assert ocpi._utc_text(datetime(1000, 1, 1, tzinfo=UTC)) == "1000-01-01T00:00:00Z"
    assert ocpi._utc_text(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == "9999-12-31T23:59:59.999999Z"
    # more days than the memo keeps: emptied, texts still right
    start = datetime(2020, 1, 1, 23, 59, 58, tzinfo=UTC)
    for n in range(5000):
        value = start + timedelta(days=n, microseconds=n)
        assert ocpi._utc_text(value) == _isoformat_text(value)
    assert len(ocpi._DAY_TEXTS) <= 4096


def _model_copy_as_version(session, version: int):
    """CompletedSession.as_version as it was: pydantic's model_copy with the update."""
    from sessions.fold import SessionFlag
    from sessions.identity import cdr_id_for, credit_cdr_id_for

    cp, tx = session.charge_point_id, session.transaction_id
    if version == 0:
        return session.model_copy(update={"version": 0, "cdr_id": cdr_id_for(cp, tx), "replaces_cdr_id": None,
                                          "credit_cdr_id": None})
    return session.model_copy(update={
        "version": version,
        "cdr_id": cdr_id_for(cp, tx, version),
        "replaces_cdr_id": cdr_id_for(cp, tx, version - 1),
        "credit_cdr_id": credit_cdr_id_for(cp, tx, version - 1),
        "flags": tuple(sorted(set(session.flags) | {SessionFlag.CORRECTED.value})),
        "remarks": session.remarks + (f"re-issued as version {version} after late events",),
    })


def _assert_same_model(ours, theirs):
    assert type(ours) is type(theirs)
    assert ours == theirs
    assert list(ours.__dict__) == list(theirs.__dict__)
    assert [type(v) for v in ours.__dict__.values()] == [type(v) for v in theirs.__dict__.values()]
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.__pydantic_extra__ == theirs.__pydantic_extra__ and ours.__pydantic_private__ == theirs.__pydantic_private__
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.content_hash() == theirs.content_hash()


def test_as_version_is_model_copy_with_the_version_ids():
    import random

    from test_fold_reference import CONFIGS, _random_state

    from sessions.fold import summarize

    rng = random.Random(4)
    for _ in range(300):
        summary = summarize(_random_state(rng), rng.choice(CONFIGS))
        for version in (0, 1, 3):
            ours = summary.as_version(version)
            _assert_same_model(ours, _model_copy_as_version(summary, version))
            assert ours.model_fields_set is not summary.model_fields_set
            # and again from a copy (its fields set now names the version fields)
            _assert_same_model(ours.as_version(0), _model_copy_as_version(ours, 0))


def test_as_version_of_a_subclass_takes_model_copy():
    import random

    from test_fold_reference import CONFIGS, _random_state

    from sessions.fold import CompletedSession, summarize

    class Session(CompletedSession):
        pass

    summary = summarize(_random_state(random.Random(5)), CONFIGS[0])
    sub = Session(**summary.model_dump())
    ours = sub.as_version(2)
    assert type(ours) is Session
    _assert_same_model(ours, _model_copy_as_version(sub, 2))


def test_plausible_limits_remembered_across_sessions_are_the_computed_ones():
    import random
    from decimal import localcontext

    import fold_reference as reference
    from test_fold_reference import CONFIGS, _random_state

    from sessions import fold

    fold._LIMITS.clear()
    rng = random.Random(12)
    states = [_random_state(rng) for _ in range(150)]
    for prec in (28, 6):
        with localcontext() as context:
            context.prec = prec
            for state in states:
                for config in CONFIGS:
                    assert fold.summarize(state, config) == reference.summarize(state, config)
            for config in CONFIGS:
                limits = fold._limits_for(config)
                assert limits, "the sessions stepped over some intervals"
                for dt, limit in limits.items():
                    assert limit == fold._plausible_limit(dt, config)
                    assert str(limit) == str(fold._plausible_limit(dt, config))
    # one table per config and context
    assert len(fold._LIMITS) == 2 * len(CONFIGS)


def test_plausible_limits_not_remembered_when_inexact_is_trapped():
    import random
    from decimal import Inexact, localcontext

    import fold_reference as reference
    from test_fold_reference import CONFIGS, _random_state

    from sessions import fold

    state = _random_state(random.Random(3))
    with localcontext() as context:
        context.traps[Inexact] = True
        assert fold._limits_for(CONFIGS[0]) == {}
        outcomes = []
        for summarize in (fold.summarize, reference.summarize):
            try:
                outcomes.append(summarize(state, CONFIGS[0]))
            except Inexact:
                outcomes.append("Inexact")
        assert outcomes[0] == outcomes[1]
