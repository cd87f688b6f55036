"""Account and number queries (synchronous, run inside one transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from .schema import accounts, numbers


class AccountExists(Exception):
    pass


class AccountGone(Exception):
    """The account was removed while a message for it was being stored."""


class NumberRoutedElsewhere(Exception):
    """The number already routes through a different provider instance."""

    def __init__(self, number: str, provider: str | None):
        super().__init__(number, provider)
        self.number = number
        self.provider = provider


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    number: str
    provider: str | None
    display_name: str | None
    password_hash: str


_ACCOUNT_COLUMNS = (
    accounts.c.id,
    accounts.c.username,
    accounts.c.number,
    numbers.c.provider,
    accounts.c.display_name,
    accounts.c.password_hash,
)
_ACCOUNTS_WITH_NUMBER = sa.select(*_ACCOUNT_COLUMNS).join_from(accounts, numbers)
_BY_USERNAME = _ACCOUNTS_WITH_NUMBER.where(accounts.c.username == sa.bindparam("username"))
_IDS_HOLDING_NUMBER = (
    sa.select(accounts.c.id).where(accounts.c.number == sa.bindparam("number")).order_by(accounts.c.id)
)


def _account(row) -> Account:
    return Account(*row)


def by_username(conn: sa.Connection, username: str) -> Account | None:
    row = conn.execute(_BY_USERNAME, {"username": username}).first()
    return _account(row) if row else None


def all_accounts(conn: sa.Connection) -> list[Account]:
    return [_account(r) for r in conn.execute(_ACCOUNTS_WITH_NUMBER.order_by(accounts.c.username))]


def count(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()


def ids_holding(conn: sa.Connection, number: str) -> list[int]:
    return list(conn.execute(_IDS_HOLDING_NUMBER, {"number": number}).scalars())


def create(
    conn: sa.Connection,
    *,
    username: str,
    password_hash: str,
    number: str,
    provider: str | None,
    display_name: str | None,
) -> Account:
    now = datetime.now(UTC)
    if by_username(conn, username) is not None:
        raise AccountExists(username)
    current = conn.execute(
        sa.select(numbers.c.provider).where(numbers.c.e164 == number)
    ).first()
    if current is None:
        conn.execute(numbers.insert().values(e164=number, provider=provider, created_at=now))
    elif current.provider != provider:
        raise NumberRoutedElsewhere(number, current.provider)
    conn.execute(
        accounts.insert().values(
            username=username,
            password_hash=password_hash,
            display_name=display_name,
            number=number,
            created_at=now,
        )
    )
    return by_username(conn, username)


def set_password_hash(conn: sa.Connection, username: str, password_hash: str) -> bool:
    result = conn.execute(
        accounts.update().where(accounts.c.username == username).values(password_hash=password_hash)
    )
    return result.rowcount == 1


def allocate_sms_ids(conn: sa.Connection, wanted: dict[int, int]) -> dict[int, list[int]]:
    """Reserve ``wanted[account_id]`` new message ids for each account.

    Accounts are locked in id order so two transactions touching the same
    accounts can never wait on each other in a cycle.
    """
    allocated = {}
    for account_id in sorted(wanted):
        n = wanted[account_id]
        last = conn.execute(_BUMP_COUNTER, {"account_id": account_id, "n": n}).scalar_one_or_none()
        if last is None:  # `account remove` committed since the account was looked up
            raise AccountGone(account_id)
        allocated[account_id] = list(range(last - n + 1, last + 1))
    return allocated


_BUMP_COUNTER = (
    accounts.update()
    .where(accounts.c.id == sa.bindparam("account_id"))
    .values(last_message_id=accounts.c.last_message_id + sa.bindparam("n", type_=sa.BigInteger))
    .returning(accounts.c.last_message_id)
)
