"""SQLAlchemy Core statements executed on a plain ``sqlite3`` connection.

The queries are built with SQLAlchemy Core like everywhere else, compiled
once per statement object, and run on the stdlib driver. SQLAlchemy's own
execution layer (pooling, events, result objects) costs several times more
than the query itself on SQLite, which on the request path was most of the
time of a send or a fetch (bench/RESULTS.md). :class:`Connection` offers the
small part of ``sqlalchemy.Connection`` the store's queries use, so the same
query functions run here and, on PostgreSQL, on a real SQLAlchemy connection.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

# SQLAlchemy's SQLite dialect renders "?" placeholders, as sqlite3 takes them.
DIALECT = sqlite.dialect()


class _Plan:
    """A statement compiled once, ready to run on sqlite3.

    Built from public SQLAlchemy only: ``Compiled.params``,
    ``SQLCompiler.construct_expanded_state`` (the final SQL, placeholder
    order and IN-list expansion), ``SQLCompiler.binds`` and the types'
    ``bind_processor`` / ``result_processor``.
    """

    __slots__ = ("sql", "binds", "result_processors", "row_type")

    def __init__(self, statement: sa.ClauseElement, column_keys: tuple[str, ...] | None):
        compiled = statement.compile(dialect=DIALECT,
                                     column_keys=list(column_keys) if column_keys else None)
        # The values the statement carries (literals, in_() lists, bindparam
        # defaults); a caller's parameters replace them by name. Passing
        # them in also keeps a bindparam without a value from being refused
        # here: it is the caller's to give.
        expanded = compiled.construct_expanded_state(compiled.params, escape_names=False)
        self.sql = expanded.statement
        # (name, value when the caller gives none, type conversion or None),
        # in placeholder order.
        self.binds = tuple((name, expanded.parameters.get(name),
                            _bind_processor(compiled, expanded.processors, name))
                           for name in expanded.positiontup or ())
        # Result columns, in the order the statement renders them; the row's
        # field names come from the cursor (the labels SQLAlchemy keys its
        # rows by), on first use.
        columns = getattr(statement, "exported_columns", ())
        self.result_processors = tuple(
            column.type.dialect_impl(DIALECT).result_processor(DIALECT, None)
            for column in columns)
        self.row_type: type | None = None

    def rows(self, cursor: sqlite3.Cursor) -> list:
        rows = cursor.fetchall()
        if not rows:
            return rows
        row_type, processors = self.row_type, self.result_processors
        if row_type is None:
            names = [column[0] for column in cursor.description]
            if processors and len(processors) != len(names):
                raise TypeError(f"fastsqlite: {len(names)} result columns, but the statement "
                                f"declares {len(processors)}: {self.sql}")
            row_type = self.row_type = namedtuple("Row", names, rename=True)
        if any(processors):
            return [row_type(*(p(v) if p else v for p, v in zip(processors, row)))
                    for row in rows]
        return [row_type(*row) for row in rows]


def _bind_processor(compiled: sa.Compiled, expanded_processors: Mapping, name: str):
    if name in expanded_processors:  # an element of an expanded IN list
        return expanded_processors[name]
    bind = compiled.binds.get(name)
    return None if bind is None else bind.type.dialect_impl(DIALECT).bind_processor(DIALECT)


@functools.lru_cache(maxsize=2048)
def _plan(statement: sa.ClauseElement, column_keys: tuple[str, ...] | None) -> _Plan:
    # The cache holds the statement itself, so an id can never be reused by
    # another statement while its plan is cached. Module-level statements
    # (the hot ones) are compiled once; statements built per call compile
    # each time, which is correct, just slower.
    return _Plan(statement, column_keys)


class Result:
    def __init__(self, rows: list, rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator:
        return iter(self._rows)

    def first(self):
        return self._rows[0] if self._rows else None

    def all(self) -> list:
        return list(self._rows)

    def scalar(self):
        return self._rows[0][0] if self._rows else None

    def scalar_one(self):
        if len(self._rows) != 1:
            raise sa.exc.NoResultFound("expected exactly one row") if not self._rows else \
                sa.exc.MultipleResultsFound("expected exactly one row")
        return self._rows[0][0]

    def scalar_one_or_none(self):
        if len(self._rows) > 1:
            raise sa.exc.MultipleResultsFound("expected at most one row")
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> Iterator:
        return (row[0] for row in self._rows)


class Connection:
    """What the store's query functions need of a connection, on sqlite3."""

    dialect = DIALECT

    def __init__(self, raw: sqlite3.Connection):
        self.raw = raw

    @staticmethod
    def _parameters(plan: _Plan, params: Mapping[str, Any] | None) -> list:
        values = []
        for name, default, convert in plan.binds:
            value = params.get(name, default) if params else default
            values.append(convert(value) if convert is not None and value is not None else value)
        return values

    def execute(self, statement: sa.ClauseElement,
                params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Result:
        if params.__class__ is list:
            return self._execute_many(statement, params)
        keys = tuple(params) if params and statement.is_insert else None
        plan = _plan(statement, keys)
        cursor = self.raw.execute(plan.sql, self._parameters(plan, params))
        if cursor.description is None:
            return Result([], cursor.rowcount)
        return Result(plan.rows(cursor), cursor.rowcount)

    def _execute_many(self, statement: sa.ClauseElement, rows: Sequence[Mapping]) -> Result:
        if not rows:
            return Result([], 0)
        plan = _plan(statement, tuple(rows[0]))
        cursor = self.raw.executemany(plan.sql, [self._parameters(plan, row) for row in rows])
        return Result([], cursor.rowcount)

    def exec_driver_sql(self, sql: str) -> Result:
        cursor = self.raw.execute(sql)
        return Result(cursor.fetchall(), cursor.rowcount)


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    # isolation_level=None: transactions are begun explicitly by the runner.
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return raw
