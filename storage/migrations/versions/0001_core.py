"""Root revision. Every concern's migrations branch from here (``alembic upgrade heads``).

Branches: ``pipeline`` (events, sessions, CDRs, tariffs, tracking), ``settlement``
(parties, contracts, partner data, reconciliation, statements), ``api`` (partners,
credentials, API keys, outbox), ``gateway`` (charge points, transaction ids).
A table one branch needs from another is declared with ``depends_on``.

Revision ID: 0001_core
Revises:
"""
from __future__ import annotations

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
