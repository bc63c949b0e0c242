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
