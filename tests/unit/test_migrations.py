from sqlalchemy import inspect

from storage.db import make_engine, upgrade


def test_upgrade_heads_runs_on_a_fresh_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    upgrade(url)  # a second run is a no-op, not an error
    tables = inspect(make_engine(url)).get_table_names()
    assert "alembic_version" in tables
