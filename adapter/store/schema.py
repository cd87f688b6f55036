"""The current shape of every table, for building queries.

The tables are created and changed only by the versioned steps in
``migrations.py``; ``tests/store/test_migrations.py`` checks that a migrated
database matches these definitions.
"""

import sqlalchemy as sa

metadata = sa.MetaData()

# 64-bit on PostgreSQL; SQLite needs exactly INTEGER for a rowid primary key.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# E.164 numbers we answer for. ``provider`` names the ``[providers.NAME]``
# instance that carries the number's off-net traffic; NULL means on-net only.
numbers = sa.Table(
    "numbers",
    metadata,
    sa.Column("e164", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    # Only ever a slow salted hash (argon2id); see adapter/passwords.py.
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=True),
    sa.Column("number", sa.String(32), sa.ForeignKey("numbers.e164"), nullable=False, index=True),
    # The per-account message id counter: bumping it inside the inserting
    # transaction locks the row, so ids commit in increasing order per account
    # and a fetch cursor can never skip a message that commits late.
    sa.Column("last_message_id", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The id the app sees (sms_id): increasing per account, shared by both
    # directions so the legacy single-cursor fetch works too.
    sa.Column("sms_id", sa.BigInteger, nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),  # "in" | "out"
    sa.Column("local_number", sa.String(32), nullable=False),
    sa.Column("peer", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False, server_default=""),
    sa.Column("disposition_notification", sa.String(1024), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    # The app installation that sent it (``%installid%``), when known.
    sa.Column("device", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "sms_id", name="uq_messages_account_sms_id"),
    sa.Index("ix_messages_account_direction_sms_id", "account_id", "direction", "sms_id"),
)

# Where each device of an account has read up to, as last seen by a fetch.
device_cursors = sa.Table(
    "device_cursors",
    metadata,
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("device", sa.String(255), primary_key=True),
    sa.Column("last_received_id", sa.BigInteger, nullable=False),
    sa.Column("last_sent_id", sa.BigInteger, nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)
