"""Alembic environment: runs migrations online against ``sqlalchemy.url``."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from sqlalchemy import engine_from_config, pool

import storage
from storage.db import Base

# Import every table module in storage/ so Base.metadata knows all tables.
for _info in pkgutil.iter_modules(storage.__path__):
    if _info.name not in ("db", "cli", "migrations"):
        importlib.import_module(f"storage.{_info.name}")

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
