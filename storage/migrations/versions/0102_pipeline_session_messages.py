"""Pipeline: a session's recorded messages stored append-only, apart from its row.

Before, ``sessions.state_json`` held the session state's whole JSON (~4 KB for a finished
session, all its recorded messages) and the worker rewrote it for every session each batch
touched. Now:

* ``sessions.state_head_json``: the state's JSON with an empty message list
  (``SessionState.head_json``: identity, ``closed_idle``, ``issued``; small);
* ``session_messages``: the messages, appended once each, one row per write of a session
  (``first_index``: the index of the row's first message in the session's message list;
  ``messages_json``: the JSON array of the messages from there, as in the state's JSON);
* ``sessions.version``: +1 at every write of the row (the worker checks a state it kept
  between batches against it instead of comparing the whole JSON text).

The state's JSON is the head with the messages of all its ``session_messages`` rows, in
``first_index`` order, put between ``"messages":[`` and ``]`` (``sessions.events.stored_json``).
Upgrade splits every stored text exactly there (the messages array's text kept byte for
byte), so the text rebuilt from the parts is the text that was stored; downgrade rebuilds
``state_json`` from the parts. Both work through the JSON text only (no application code).

Revision ID: 0102_pipeline_session_messages
Revises: 0101_pipeline_event_indexes
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0102_pipeline_session_messages"
down_revision = "0101_pipeline_event_indexes"
branch_labels = None
depends_on = None

#: The fields of a stored session state, in the order its JSON has them.
_FIELDS = ("session_id", "charge_point_id", "transaction_id", "ocpp_version", "messages", "closed_idle", "issued")
_PAGE = 500

_sessions = sa.table("sessions", sa.column("session_key", sa.String), sa.column("state_json", sa.Text),
                     sa.column("state_head_json", sa.Text))
_messages = sa.table("session_messages", sa.column("session_key", sa.String), sa.column("first_index", sa.Integer),
                     sa.column("messages_json", sa.Text))


def split_state_json(text: str) -> tuple[str, str]:
    """(the text with ``[]`` for the messages array, the messages array's text as stored)."""
    decoder = json.JSONDecoder()
    ws = json.decoder.WHITESPACE.match

    def skip(i: int) -> int:
        return ws(text, i).end()

    i = skip(0)
    if text[i:i + 1] != "{":
        raise ValueError(f"not a session state: {text[:200]!r}")
    i = skip(i + 1)
    for n, name in enumerate(_FIELDS):
        if n:
            if text[i:i + 1] != ",":
                raise ValueError(f"not a session state (fields {_FIELDS}): {text[:200]!r}")
            i = skip(i + 1)
        key, i = json.decoder.scanstring(text, i + 1) if text[i:i + 1] == '"' else (None, i)
        i = skip(i)
        if key != name or text[i:i + 1] != ":":
            raise ValueError(f"not a session state (fields {_FIELDS}): {text[:200]!r}")
        i = skip(i + 1)
        value, end = decoder.raw_decode(text, i)
        if name == "messages":
            if not isinstance(value, list):
                raise ValueError(f"messages is not a list: {text[:200]!r}")
            return text[:i] + "[]" + text[end:], text[i:end]
        i = skip(end)
    raise AssertionError("unreachable")


def join_state_json(head: str, arrays: list[str]) -> str:
    """The text :func:`split_state_json` split (and what the worker's parts add up to)."""
    key = ',"messages":['
    at = head.find(key)
    end = at + len(key)
    if at < 0 or head[end:end + 1] != "]":
        raise ValueError(f"not a session state without messages: {head[:200]!r}")
    inner = [a[1:-1] for a in arrays if len(a) > 2]
    return head[:end] + ",".join(inner) + head[end:]


def _pages(bind, column):
    """The (session_key, ``column``) rows of ``sessions`` in pages of ``_PAGE``, by key: a
    large table is never held in memory at once (the caller may update the page's rows)."""
    last = None
    while True:
        query = sa.select(_sessions.c.session_key, column).order_by(_sessions.c.session_key)
        if last is not None:
            query = query.where(_sessions.c.session_key > last)
        rows = bind.execute(query.limit(_PAGE)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def upgrade() -> None:
    op.create_table(
        "session_messages",
        sa.Column("session_key", sa.String(300), nullable=False),
        sa.Column("first_index", sa.Integer, nullable=False),
        sa.Column("messages_json", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("session_key", "first_index", name="pk_session_messages"),
    )
    op.add_column("sessions", sa.Column("state_head_json", sa.Text))
    op.add_column("sessions", sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    bind = op.get_bind()
    for rows in _pages(bind, _sessions.c.state_json):
        heads, arrays = [], []
        for key, text in rows:
            head, array = split_state_json(text)
            heads.append({"key": key, "head": head})
            if len(array) > 2:
                arrays.append({"session_key": key, "first_index": 0, "messages_json": array})
        bind.execute(_sessions.update().where(_sessions.c.session_key == sa.bindparam("key"))
                     .values(state_head_json=sa.bindparam("head")), heads)
        if arrays:
            bind.execute(_messages.insert(), arrays)
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("state_head_json", existing_type=sa.Text, nullable=False)
        batch.drop_column("state_json")


def downgrade() -> None:
    op.add_column("sessions", sa.Column("state_json", sa.Text))
    bind = op.get_bind()
    for rows in _pages(bind, _sessions.c.state_head_json):
        arrays: dict[str, list[str]] = {}
        chunk = bind.execute(
            sa.select(_messages.c.session_key, _messages.c.messages_json)
            .where(_messages.c.session_key.in_([key for key, _ in rows]))
            .order_by(_messages.c.session_key, _messages.c.first_index)).all()
        for key, array in chunk:
            arrays.setdefault(key, []).append(array)
        bind.execute(_sessions.update().where(_sessions.c.session_key == sa.bindparam("key"))
                     .values(state_json=sa.bindparam("text")),
                     [{"key": key, "text": join_state_json(head, arrays.get(key, []))} for key, head in rows])
    with op.batch_alter_table("sessions") as batch:
        batch.alter_column("state_json", existing_type=sa.Text, nullable=False)
        batch.drop_column("state_head_json")
        batch.drop_column("version")
    op.drop_table("session_messages")
