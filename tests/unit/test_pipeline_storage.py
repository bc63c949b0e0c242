"""Pipeline tables and repositories on SQLite (the same code runs on PostgreSQL in the
integration tests)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from storage import repositories as repo
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import CdrRecord

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def _cdr(cdr_id="CDR1", total="12.3400", body='{"id": "CDR1"}'):
    return dict(
        country_code="NL", party_id="CLG", id=cdr_id, start_date_time=T0, end_date_time=T0 + timedelta(hours=1),
        currency="EUR", total_cost_excl_vat=Decimal(total), total_cost_incl_vat=None, total_energy=Decimal("20.5"),
        credit=False, last_updated=T0 + timedelta(hours=1), cdr_json=body,
    )


def test_issuing_the_same_cdr_twice_is_a_no_op(db):
    with db.begin() as s:
        assert repo.issue_cdr(s, **_cdr()).inserted
    with db.begin() as s:
        assert not repo.issue_cdr(s, **_cdr()).inserted
    with db() as s:
        row = repo.get_cdr(s, "NL", "CLG", "CDR1")
        assert row.total_cost_excl_vat == Decimal("12.3400")
        assert row.start_date_time == T0  # aware UTC back from SQLite
        assert row.content_hash == repo.content_hash('{"id": "CDR1"}')


def test_a_cdr_id_never_gets_different_content(db):
    with db.begin() as s:
        repo.issue_cdr(s, **_cdr())
    with pytest.raises(repo.ConflictingCdr), db.begin() as s:
        repo.issue_cdr(s, **_cdr(body='{"id": "CDR1", "x": 1}'))


def test_tracking_and_counters_upsert(db):
    with db.begin() as s:
        repo.track(s, "g", "t", 0, 10)
        repo.track(s, "g", "t", 1, 3)
        repo.add_to_counters(s, "g", {"events_in": 5, "applied": 4, "duplicates": 1})
    with db.begin() as s:
        repo.track(s, "g", "t", 0, 12)
        repo.add_to_counters(s, "g", {"events_in": 2, "dead_lettered": 2})
    with db() as s:
        assert repo.tracked_offsets(s, "g", "t") == {0: 12, 1: 3}
        assert repo.read_counters(s, "g") == {"events_in": 7, "applied": 4, "dead_lettered": 2, "duplicates": 1}


def test_tariff_version_valid_at_session_start_known_by_the_events(db):
    v1, v2 = T0 - timedelta(days=30), T0 + timedelta(days=1)
    with db.begin() as s:
        for version, price in ((v1, "0.30"), (v2, "0.35")):
            repo.store_tariff_version(
                s, country_code="NL", party_id="CLG", id="T1", currency="EUR", last_updated=version,
                valid_from=None, valid_to=None, tariff_json=f'{{"price": "{price}"}}',
            )
    with db() as s:
        assert repo.tariff_valid_at(s, "T1", T0, known_at=T0).last_updated == v1
        assert repo.tariff_valid_at(s, "T1", T0, known_at=v2).last_updated == v2
        assert repo.tariff_valid_at(s, "T1", T0).last_updated == v2
        assert repo.tariff_valid_at(s, "T1", T0, known_at=v1 - timedelta(days=1)).last_updated == v1
        assert repo.tariff_valid_at(s, "T2", T0) is None


def test_list_cdrs_filters_by_last_updated_window(db):
    with db.begin() as s:
        repo.issue_cdr(s, **_cdr("A", body="a"))
        b = _cdr("B", body="b")
        b["last_updated"] = T0 + timedelta(days=2)
        repo.issue_cdr(s, **b)
    with db() as s:
        rows, total = repo.list_cdrs(s, date_from=T0 + timedelta(days=1))
        assert [r.id for r in rows] == ["B"] and total == 1
        rows, total = repo.list_cdrs(s, limit=1)
        assert total == 2 and [r.id for r in rows] == ["A"]
        assert isinstance(rows[0], CdrRecord)
