"""fastsqlite runs SQLAlchemy Core statements on sqlite3 as SQLAlchemy would.

Against a database created from ``store/schema.py``: every statement the
store builds once prepares there, and a range of Core statements (not only
today's) gives the same rows, field names, Python types and row counts
through fastsqlite as through SQLAlchemy's own execution.
"""

from __future__ import annotations

import datetime
import importlib
import pkgutil
import sqlite3

import pytest
import sqlalchemy as sa

import adapter.store
from adapter.store import fastsqlite
from adapter.store.schema import accounts, messages, metadata, numbers, opt_outs, settings

CREATED = datetime.datetime(2026, 12, 4, 9, 30, 15, 123456)
# SQLAlchemy stores it as "...:00.000000", sqlite3's own adapter as "...:00":
# only SQLAlchemy's bind processing finds it again.
WHOLE_SECOND = datetime.datetime(2026, 12, 4, 9, 31)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "schema.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(numbers.insert(), [
            {"e164": "+12025550101", "provider": None, "created_at": CREATED},
            {"e164": "+12025550102", "provider": "vms", "created_at": CREATED},
        ])
        conn.execute(accounts.insert(), [
            {"username": "alice", "password_hash": "x", "display_name": "Alice",
             "number": "+12025550101", "created_at": CREATED},
            {"username": "bob", "password_hash": "y", "display_name": None,
             "number": "+12025550102", "created_at": CREATED},
        ])
        conn.execute(messages.insert(), [
            {"account_id": 1, "sms_id": n, "direction": "out", "local_number": "+12025550101",
             "peer": "+12025550102", "body": f"text {n}", "status": "queued",
             "created_at": CREATED + datetime.timedelta(seconds=n), "updated_at": WHOLE_SECOND}
            for n in range(1, 6)
        ])
        conn.execute(opt_outs.insert(), [
            {"local_number": "+12025550101", "remote_number": "+12025550102", "opted_out": True,
             "reason": "STOP", "updated_at": CREATED},
            {"local_number": "+12025550102", "remote_number": "+12025550101", "opted_out": False,
             "reason": "START", "updated_at": CREATED},
        ])
    raw = fastsqlite.connect(str(path), busy_timeout_ms=0)
    try:
        yield engine, raw
    finally:
        raw.close()
        engine.dispose()


def store_statements() -> list:
    """Every statement the store modules build once, at import."""
    found = []
    for module_info in pkgutil.iter_modules(adapter.store.__path__):
        module = importlib.import_module(f"adapter.store.{module_info.name}")
        for name, value in vars(module).items():
            # Statements built once per engine's dialect: the SQLite one runs here.
            candidate = value.get("sqlite") if isinstance(value, dict) else value
            if isinstance(candidate, sa.ClauseElement) and isinstance(candidate, sa.Executable):
                found.append(pytest.param(candidate, id=f"{module_info.name}.{name}"))
    return found


@pytest.mark.parametrize("statement", store_statements())
def test_every_statement_the_store_builds_once_prepares_against_the_schema(database, statement):
    _, raw = database
    plan = fastsqlite._plan(statement, None)
    # EXPLAIN compiles the statement against the tables without running it.
    assert raw.execute(f"EXPLAIN {plan.sql}", [None] * len(plan.binds)).fetchall()


def test_the_store_builds_statements_once(database):
    # The parametrized test above would pass vacuously on an empty list.
    assert len(list(store_statements())) >= 20


NOW = CREATED + datetime.timedelta(hours=1)


def through_sqlalchemy(engine, statement, params):
    with engine.connect() as conn, conn.begin() as transaction:
        result = conn.execute(statement, params)
        outcome = ([tuple(row) for row in result], list(result.keys())) if result.returns_rows \
            else (None, result.rowcount)
        transaction.rollback()
    return outcome


def through_fastsqlite(raw, statement, params):
    raw.execute("BEGIN")
    try:
        result = fastsqlite.Connection(raw).execute(statement, params)
        rows = result.all()
        if rows or statement_returns_rows(statement):
            return [tuple(row) for row in rows], list(rows[0]._fields) if rows else None
        return None, result.rowcount
    finally:
        raw.execute("ROLLBACK")


def statement_returns_rows(statement) -> bool:
    return bool(getattr(statement, "exported_columns", None)) or isinstance(statement, sa.TextClause)


ALICE = accounts.c.username == "alice"

EQUIVALENT = {
    "whole table, datetimes": (sa.select(accounts).order_by(accounts.c.id), None),
    "booleans": (sa.select(opt_outs.c.opted_out, opt_outs.c.reason)
                 .order_by(opt_outs.c.local_number), None),
    "bindparam given": (sa.select(accounts.c.id).where(accounts.c.username == sa.bindparam("u")),
                        {"u": "bob"}),
    "bindparam default": (sa.select(accounts.c.id).where(
        accounts.c.username == sa.bindparam("u", "alice")), None),
    "bindparam default replaced": (sa.select(accounts.c.id).where(
        accounts.c.username == sa.bindparam("u", "alice")), {"u": "bob"}),
    "datetime bindparam": (sa.select(messages.c.sms_id).where(
        messages.c.created_at > sa.bindparam("after", type_=messages.c.created_at.type))
        .order_by(messages.c.sms_id), {"after": CREATED + datetime.timedelta(seconds=3)}),
    "datetime of a whole second": (sa.select(messages.c.sms_id).where(
        messages.c.updated_at == sa.bindparam("at", type_=messages.c.updated_at.type))
        .order_by(messages.c.sms_id), {"at": WHOLE_SECOND}),
    "in list": (sa.select(messages.c.body).where(messages.c.sms_id.in_([2, 4, 9]))
                .order_by(messages.c.id), None),
    "in list of datetimes": (sa.select(messages.c.sms_id).where(messages.c.created_at.in_(
        [CREATED + datetime.timedelta(seconds=1), CREATED + datetime.timedelta(seconds=5)]))
        .order_by(messages.c.sms_id), None),
    "in list of whole seconds": (sa.select(messages.c.sms_id).where(
        messages.c.updated_at.in_([WHOLE_SECOND, NOW])).order_by(messages.c.sms_id), None),
    "empty in list": (sa.select(messages.c.id).where(messages.c.sms_id.in_([])), None),
    "limit and offset": (sa.select(messages.c.sms_id).order_by(messages.c.sms_id.desc())
                         .limit(sa.bindparam("n")).offset(1), {"n": 2}),
    "anonymous labels": (sa.select(sa.func.count(), sa.func.max(messages.c.created_at),
                                   messages.c.sms_id + 1).group_by(messages.c.account_id), None),
    "same column name twice": (sa.select(accounts.c.id, messages.c.id, accounts.c.created_at)
                               .join_from(messages, accounts).order_by(messages.c.id), None),
    "labels": (sa.select(accounts.c.username.label("who"), numbers.c.provider.label("via"))
               .join_from(accounts, numbers).order_by(accounts.c.id), None),
    "union": (sa.union_all(sa.select(numbers.c.e164), sa.select(accounts.c.number)), None),
    "exists": (sa.select(sa.exists().where(ALICE)), None),
    "subquery": (sa.select(accounts.c.username).where(accounts.c.id.in_(
        sa.select(messages.c.account_id).where(messages.c.sms_id > 3))), None),
    "no rows": (sa.select(accounts).where(accounts.c.username == "nobody"), None),
    "text": (sa.text("SELECT username AS u, created_at FROM accounts WHERE id = :id"), {"id": 2}),
    "typed text": (sa.text("SELECT created_at FROM accounts ORDER BY id")
                   .columns(created_at=accounts.c.created_at.type), None),
    "insert returning": (messages.insert().returning(messages.c.id, messages.c.created_at), {
        "account_id": 2, "sms_id": 1, "direction": "in", "local_number": "+12025550102",
        "peer": "+12025550101", "body": "hi", "status": "received",
        "created_at": NOW, "updated_at": NOW}),
    "insert": (settings.insert(), {"key": "k", "value": "v"}),
    "insert of several rows": (settings.insert(), [{"key": "a", "value": "1"},
                                                   {"key": "b", "value": "2"}]),
    "update returning": (messages.update().where(messages.c.sms_id > sa.bindparam("above"))
                         .values(status="sent", updated_at=NOW)
                         .returning(messages.c.sms_id, messages.c.updated_at), {"above": 3}),
    "update": (opt_outs.update().values(opted_out=sa.bindparam("flag")), {"flag": False}),
    "delete": (messages.delete().where(messages.c.sms_id <= 2), None),
}


@pytest.mark.parametrize("statement, params", EQUIVALENT.values(), ids=EQUIVALENT.keys())
def test_rows_match_sqlalchemys_own(database, statement, params):
    engine, raw = database
    expected = through_sqlalchemy(engine, statement, params)
    rows, fields = through_fastsqlite(raw, statement, params)
    assert rows == expected[0]
    if rows:
        assert [[type(value) for value in row] for row in rows] == \
            [[type(value) for value in row] for row in expected[0]]
    if expected[0] is None:
        assert fields == expected[1]  # the row count
    elif rows:
        assert fields == expected[1]


def test_row_fields_are_reachable_by_name(database):
    _, raw = database
    row = fastsqlite.Connection(raw).execute(
        sa.select(accounts.c.username, accounts.c.created_at).where(ALICE)).first()
    assert (row.username, row.created_at) == ("alice", CREATED)
    assert row._asdict() == {"username": "alice", "created_at": CREATED}


def test_scalar_helpers_refuse_like_sqlalchemy(database):
    _, raw = database
    conn = fastsqlite.Connection(raw)
    ids = sa.select(accounts.c.id).order_by(accounts.c.id)
    assert conn.execute(ids).scalar() == 1
    assert list(conn.execute(ids).scalars()) == [1, 2]
    assert conn.execute(ids.where(ALICE)).scalar_one() == 1
    assert conn.execute(ids.where(accounts.c.username == "x")).scalar_one_or_none() is None
    with pytest.raises(sa.exc.NoResultFound):
        conn.execute(ids.where(accounts.c.username == "x")).scalar_one()
    with pytest.raises(sa.exc.MultipleResultsFound):
        conn.execute(ids).scalar_one()
    with pytest.raises(sa.exc.MultipleResultsFound):
        conn.execute(ids).scalar_one_or_none()


def test_a_statement_built_per_call_is_planned_per_call(database):
    # Values written into a statement (not bound) must not leak into the
    # next statement of the same shape.
    _, raw = database
    conn = fastsqlite.Connection(raw)
    by_name = lambda name: sa.select(accounts.c.id).where(accounts.c.username == name)  # noqa: E731
    assert conn.execute(by_name("alice")).scalar_one() == 1
    assert conn.execute(by_name("bob")).scalar_one() == 2


def test_errors_are_sqlite3s(database):
    _, raw = database
    with pytest.raises(sqlite3.IntegrityError):
        fastsqlite.Connection(raw).execute(settings.insert(), {"key": None, "value": "v"})
