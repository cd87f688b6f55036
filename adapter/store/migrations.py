"""Versioned schema migrations, applied in order and recorded once each.

Each step is frozen once released: it builds the tables as they were at that
version with its own MetaData, never from ``schema.py``, so a new database and
an upgraded one end up the same. Add a step to change the schema; never edit
one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

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


MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "accounts, numbers, messages, device cursors", _v1_initial),
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
