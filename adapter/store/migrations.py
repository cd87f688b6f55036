"""Versioned schema migrations, applied in order and recorded once each.

Each step is frozen once released: it builds the tables as they were at that
version with its own MetaData, never from ``schema.py``, so a new database and
an upgraded one end up the same. Add a step to change the schema; never edit
one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from .schema import BIG_ID, schema_migrations

# Held while migrating on PostgreSQL, so processes starting together take
# turns (SQLite's BEGIN IMMEDIATE does the same there).
_MIGRATION_LOCK_KEY = 0x4163726F  # "Acro"


def _v1_initial(conn: sa.Connection) -> None:
    md = sa.MetaData()
    ts = sa.DateTime(timezone=True)
    sa.Table(
        "numbers", md,
        sa.Column("e164", sa.String(32), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("created_at", ts, nullable=False),
    )
    sa.Table(
        "accounts", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("number", sa.String(32), sa.ForeignKey("numbers.e164"), nullable=False,
                  index=True),
        sa.Column("last_message_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", ts, nullable=False),
    )
    sa.Table(
        "messages", md,
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("sms_id", sa.BigInteger, nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("local_number", sa.String(32), nullable=False),
        sa.Column("peer", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False, server_default=""),
        sa.Column("disposition_notification", sa.String(1024), nullable=False,
                  server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("device", sa.String(255), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.UniqueConstraint("account_id", "sms_id", name="uq_messages_account_sms_id"),
        sa.Index("ix_messages_account_direction_sms_id", "account_id", "direction", "sms_id"),
    )
    sa.Table(
        "device_cursors", md,
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("device", sa.String(255), primary_key=True),
        sa.Column("last_received_id", sa.BigInteger, nullable=False),
        sa.Column("last_sent_id", sa.BigInteger, nullable=False),
        sa.Column("seen_at", ts, nullable=False),
    )
    md.create_all(conn)


def _v2_carriers(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE messages ADD COLUMN failure_reason VARCHAR(1024)"))
    md = sa.MetaData()
    ts = sa.DateTime(timezone=True)
    sa.Table("messages", md, sa.Column("id", BIG_ID, primary_key=True))  # for the foreign keys
    sa.Table(
        "jobs", md,
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.BigInteger,
                  sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("conversation", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_at", ts, nullable=False),
        sa.Column("lease_until", ts, nullable=True),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Index("ix_jobs_state_due_at", "state", "due_at"),
        sa.Index("ix_jobs_conversation_id", "conversation", "id"),
    )
    sa.Table(
        "carrier_refs", md,
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("ref", sa.String(255), primary_key=True),
        sa.Column("message_id", sa.BigInteger,
                  sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    sa.Table(
        "inbound_seen", md,
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("carrier_id", sa.String(255), primary_key=True),
        sa.Column("created_at", ts, nullable=False),
    )
    sa.Table(
        "inbound_parts", md,
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    sa.Table(
        "opt_outs", md,
        sa.Column("local_number", sa.String(32), primary_key=True),
        sa.Column("remote_number", sa.String(32), primary_key=True),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    sa.Table(
        "settings", md,
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    md.create_all(conn, tables=[t for t in md.sorted_tables if t.name != "messages"])


def _v3_push(conn: sa.Connection) -> None:
    conn.execute(sa.text(
        "ALTER TABLE accounts ADD COLUMN read_up_to BIGINT NOT NULL DEFAULT 0"))
    # What arrived before pushes existed counts as read: the first badge must
    # not be the size of the whole history.
    conn.execute(sa.text("UPDATE accounts SET read_up_to = last_message_id"))
    md = sa.MetaData()
    ts = sa.DateTime(timezone=True)
    sa.Table("accounts", md, sa.Column("id", sa.Integer, primary_key=True))  # for the foreign key
    sa.Table(
        "push_tokens", md,
        sa.Column("selector", sa.String(255), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("device", sa.String(255), nullable=True),
        sa.Column("other_token", sa.String(1024), nullable=False, server_default=""),
        sa.Column("other_app_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("call_token", sa.String(1024), nullable=False, server_default=""),
        sa.Column("call_app_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("legacy_token", sa.String(1024), nullable=False, server_default=""),
        sa.Column("legacy_app_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Index("ix_push_tokens_other_token", "other_token"),
        sa.Index("ix_push_tokens_legacy_token", "legacy_token"),
    )
    md.create_all(conn, tables=[md.tables["push_tokens"]])


def _v4_lease_index(conn: sa.Connection) -> None:
    # Leasing asks, for each due job, whether an earlier job of its
    # conversation is still queued or leased; with the state in the index
    # that is a seek, not a walk over every finished job of the conversation.
    conn.execute(sa.text("DROP INDEX ix_jobs_conversation_id"))
    sa.Index("ix_jobs_conversation_state_id", sa.Table(
        "jobs", sa.MetaData(), sa.Column("conversation"), sa.Column("state"), sa.Column("id"),
    ).c.conversation, "state", "id").create(conn)


def _v5_jobs_message_index(conn: sa.Connection) -> None:
    # Deleting a message (its account removed) deletes its jobs: without an
    # index each deleted message scanned the whole outbox, which only grows.
    # Every other foreign key a delete cascades through already leads an index.
    sa.Index("ix_jobs_message_id", sa.Table(
        "jobs", sa.MetaData(), sa.Column("message_id"),
    ).c.message_id).create(conn)


def _v6_parts_by_pair(conn: sa.Connection) -> None:
    # A group of parts is one sender's to one recipient: the key gains both.
    # The table holds only parts in flight, so it is rebuilt with them copied;
    # each of their groups gets the wait job that delivers it if a part never
    # comes (they had none: before this step such a group waited forever).
    ts = sa.DateTime(timezone=True)
    old = sa.Table(
        "inbound_parts", sa.MetaData(),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    new = sa.Table(
        "inbound_parts", sa.MetaData(),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("sender", sa.String(32), primary_key=True),
        sa.Column("recipient", sa.String(32), primary_key=True),
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    rows = [row._asdict() for row in conn.execute(sa.select(old))]
    old.drop(conn)
    new.create(conn)
    if not rows:
        return
    conn.execute(new.insert(), rows)
    groups: dict[tuple, datetime] = {}
    for row in rows:
        key = (row["provider"], row["sender"], row["recipient"], row["group_id"])
        groups[key] = min(groups.get(key, row["created_at"]), row["created_at"])
    jobs = sa.table("jobs", *(sa.column(name) for name in (
        "kind", "provider", "conversation", "payload", "state", "attempts")),
        *(sa.column(name, ts) for name in ("due_at", "created_at", "updated_at")))
    now = datetime.now(UTC)
    conn.execute(jobs.insert(), [
        {"kind": "parts", "provider": provider,
         "conversation": f"parts:{provider}:{sender}>{recipient}:{group}"[:300],
         "payload": json.dumps({"sender": sender, "recipient": recipient, "group": group}),
         "state": "queued", "attempts": 0, "due_at": first + timedelta(seconds=60),
         "created_at": now, "updated_at": now}
        for (provider, sender, recipient, group), first in groups.items()])


def _v7_push_spacing(conn: sa.Connection) -> None:
    due = sa.DateTime(timezone=True).compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE push_tokens ADD COLUMN last_push_due_at {due}"))


MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "accounts, numbers, messages, device cursors", _v1_initial),
    (2, "outbox jobs, carrier refs, inbound dedupe and parts, opt-outs, settings", _v2_carriers),
    (3, "push tokens, accounts' read marker", _v3_push),
    (4, "outbox lease index by conversation and state", _v4_lease_index),
    (5, "outbox jobs indexed by message", _v5_jobs_message_index),
    (6, "inbound parts grouped by sender and recipient, with a wait job", _v6_parts_by_pair),
    (7, "push tokens: when the device's newest push was due", _v7_push_spacing),
]


def applied_versions(conn: sa.Connection) -> set[int]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return set()
    return set(conn.execute(sa.select(schema_migrations.c.version)).scalars())


def apply_pending(conn: sa.Connection) -> list[int]:
    """Apply every step not yet recorded, inside the caller's transaction.

    Returns the versions applied now (empty when already up to date).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    schema_migrations.create(conn, checkfirst=True)
    done = applied_versions(conn)
    applied = []
    for version, description, step in MIGRATIONS:
        if version in done:
            continue
        step(conn)
        conn.execute(
            schema_migrations.insert().values(
                version=version, description=description, applied_at=datetime.now(UTC)
            )
        )
        applied.append(version)
    return applied
