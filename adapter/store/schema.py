"""The current shape of every table, for building queries.

The tables are created and changed only by the versioned steps in
``migrations.py``; ``tests/store/test_migrations.py`` checks that a migrated
database matches these definitions.
"""

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

metadata = sa.MetaData()

# messages.direction
INBOUND = "in"
OUTBOUND = "out"


class MessageState(StrEnum):
    """The values of messages.status (and carrier_refs.status, a sent part's).

    Only the vocabulary lives here; which state may follow which is the
    domain's rule (messaging/status.py).
    """

    QUEUED = "queued"  # outbound: waiting in the outbox for its carrier
    SUBMITTED = "submitted"  # the carrier took it
    SENT = "sent"  # the carrier handed it on
    DELIVERED = "delivered"  # reached the phone (on-net: at once)
    FAILED = "failed"
    RECEIVED = "received"  # inbound
    DISPLAYED = "displayed"  # inbound, and the app sent a display receipt for it


@dataclass(frozen=True)
class StoredMessage:
    """One message row as the dispatcher, the pushes and the delivery rules read it."""

    id: int
    account_id: int
    sms_id: int
    local_number: str
    peer: str
    body: str
    content_type: str
    disposition_notification: str
    state: str  # a MessageState


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
    # Received messages up to this sms_id have been returned by a fetch from
    # one of the account's devices: they no longer count as unread (migration 3).
    sa.Column("read_up_to", sa.BigInteger, nullable=False, server_default="0"),
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
    # a MessageState: out queued | submitted | sent | delivered | failed;
    # in received, or displayed once the app sent a display receipt for it
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failure_reason", sa.String(1024), nullable=True),
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

# -- carriers (migration 2) ---------------------------------------------------------

# The durable outbox: work that must reach the outside world (a carrier
# send; later pushes), committed in the same transaction as its message.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "send" | "push" | "parts"
    # Indexed (migration 5): deleting a message finds its jobs by it.
    sa.Column("message_id", sa.BigInteger, sa.ForeignKey("messages.id", ondelete="CASCADE"),
              nullable=True, index=True),
    sa.Column("provider", sa.String(64), nullable=True),
    # Jobs with the same key run one at a time in id order (one conversation).
    sa.Column("conversation", sa.String(300), nullable=False),
    sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
    # queued | leased | done | failed | dead
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("leased_by", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_jobs_state_due_at", "state", "due_at"),
    sa.Index("ix_jobs_conversation_state_id", "conversation", "state", "id"),
)

# The carrier's id(s) of each message we sent (one per part when split).
carrier_refs = sa.Table(
    "carrier_refs",
    metadata,
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("ref", sa.String(255), primary_key=True),
    sa.Column("message_id", sa.BigInteger, sa.ForeignKey("messages.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("part", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
)

# Carrier message ids of inbound messages already stored: a retried webhook
# stores nothing new.
inbound_seen = sa.Table(
    "inbound_seen",
    metadata,
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("carrier_id", sa.String(255), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Parts of a split inbound message, held until all have arrived or the
# group's wait ran out (a "parts" job). A group is one sender's to one
# recipient: another sender's parts with the same id are another message
# (migration 6).
inbound_parts = sa.Table(
    "inbound_parts",
    metadata,
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("sender", sa.String(32), primary_key=True),
    sa.Column("recipient", sa.String(32), primary_key=True),
    sa.Column("group_id", sa.String(255), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# STOP / START per (our number, their number).
opt_outs = sa.Table(
    "opt_outs",
    metadata,
    sa.Column("local_number", sa.String(32), primary_key=True),
    sa.Column("remote_number", sa.String(32), primary_key=True),
    sa.Column("opted_out", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Small values the processes sharing a database must agree on (webhook secrets).
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# -- push notifications (migration 3) ------------------------------------------------

# One row per account on a device: the app's selector names it, and the app
# reports its push tokens at every start (ACROBITS.md 3a). A pair is kept only
# when both its token and app id were reported; '' means never reported.
push_tokens = sa.Table(
    "push_tokens",
    metadata,
    sa.Column("selector", sa.String(255), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # The app installation (%installid%): a device is not pushed for what it sent.
    sa.Column("device", sa.String(255), nullable=True),
    sa.Column("other_token", sa.String(1024), nullable=False, server_default=""),
    sa.Column("other_app_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("call_token", sa.String(1024), nullable=False, server_default=""),
    sa.Column("call_app_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("legacy_token", sa.String(1024), nullable=False, server_default=""),
    sa.Column("legacy_app_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # When the device's newest push job was due: the next one is due no
    # sooner than [push] min_interval_seconds after it (migration 7).
    sa.Column("last_push_due_at", sa.DateTime(timezone=True), nullable=True),
    # A token reported under another account moves: found by these.
    sa.Index("ix_push_tokens_other_token", "other_token"),
    sa.Index("ix_push_tokens_legacy_token", "legacy_token"),
)
