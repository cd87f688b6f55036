"""Running store work on a database engine from async code.

Store queries are plain functions over a connection; a runner executes one
such function as one transaction and hands back its result.

SQLite: the work runs right on the event loop, on one ``sqlite3``
connection (see ``fastsqlite.py``). A transaction here is tens of
microseconds, less than handing it to a thread would cost; WAL mode keeps
readers from waiting on writers, and in one process all writes go through
this one connection, so they never wait on each other either. Only when
another process holds the write lock (a second ``serve``, the CLI) does a
write go to a worker thread, which waits there with a busy timeout instead
of stalling the loop. Checkpoints of the WAL are also left to that thread.

PostgreSQL: asyncpg through SQLAlchemy's asyncio engine; each work function
runs in one transaction via ``run_sync`` (statements await, no threads).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from . import fastsqlite

T = TypeVar("T")
Work = Callable[[sa.Connection], T]

BUSY_TIMEOUT_SECONDS = 10
CHECKPOINT_EVERY_COMMITS = 1000


class DatabaseUrlError(ValueError):
    pass


class DatabaseUnavailable(Exception):
    """The database cannot be opened or reached; the text says which and why."""


def problem(error: BaseException) -> str:
    """One line saying what went wrong with the database, without a traceback
    (and without the URL: it may hold a password)."""
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split()) or cause.__class__.__name__
    return f"{cause.__class__.__name__}: {text}"


# What a database that is down, missing or refusing us raises: the driver's
# errors wrapped by SQLAlchemy, sqlite3's own, and socket errors (asyncpg
# connecting to a closed port raises ConnectionRefusedError unwrapped).
UNAVAILABLE = (sa.exc.SQLAlchemyError, sqlite3.Error, OSError)


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise DatabaseUrlError(
            "an SQLite database_url must name a file, e.g. sqlite:///./data/adapter.sqlite3")
    return Path(url.database)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)


def _transaction(raw: sqlite3.Connection, begin: str, work: Work[T]) -> T:
    raw.execute(begin)
    try:
        result = work(fastsqlite.Connection(raw))
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return result


def _in_savepoint(raw: sqlite3.Connection, work: Work[T]) -> tuple[T | None, BaseException | None]:
    """Run one write of a group; its failure undoes only its own changes."""
    raw.execute("SAVEPOINT write")
    try:
        result = work(fastsqlite.Connection(raw))
    except Exception as error:
        raw.execute("ROLLBACK TO write")
        raw.execute("RELEASE write")
        return None, error
    raw.execute("RELEASE write")
    return result, None


def _chain(task: asyncio.Future, future: asyncio.Future) -> None:
    """Hand ``task``'s outcome to the caller's ``future``; a caller that gives
    up cancels the task (a thread job not yet begun then never runs)."""
    def copy(done: asyncio.Future) -> None:
        error = None if done.cancelled() else done.exception()  # retrieved either way
        if future.done():
            return
        if done.cancelled():
            future.cancel()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(done.result())

    def give_up(caller: asyncio.Future) -> None:
        if caller.cancelled():
            task.cancel()

    task.add_done_callback(copy)
    future.add_done_callback(give_up)


def _private_file(path: Path) -> None:
    """Create the database file, and the directories it needs, readable by
    the owner only (they hold messages, push tokens and webhook secrets);
    SQLite gives its -wal and -shm files the database file's permissions."""
    missing = [parent for parent in (path.parent, *path.parent.parents) if not parent.exists()]
    try:
        for directory in reversed(missing):
            directory.mkdir(mode=0o700)
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot create the database directory {directory}: {error.strerror}") from None
    if path.is_dir():
        raise DatabaseUnavailable(f"the SQLite database {path} is a directory, not a file")
    try:
        # O_EXCL: an existing database is never opened here. Closing any
        # descriptor of a file drops every POSIX lock this process holds on
        # it, SQLite's included (another Store of this process may hold some).
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot create or open the SQLite database {path}: {error.strerror}") from None


class SQLiteRunner:
    def __init__(self, database_url: str):
        path = sqlite_path(database_url)
        _private_file(path)
        self._path = str(path)
        self.description = f"SQLite file {path}"
        try:
            # Never waits for a lock: a busy database sends the work to the thread.
            self._loop_raw = fastsqlite.connect(self._path, busy_timeout_ms=0)
            self._loop_raw.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as error:
            raise DatabaseUnavailable(f"cannot open the SQLite database {path}: {error}") from None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._thread_raw: sqlite3.Connection | None = None
        self._commits = 0
        self._pending: list[tuple[Work, asyncio.Future]] = []
        self._data_version: int | None = None
        # Migrations need SQLAlchemy proper (schema inspection, DDL).
        self._engine = sa.create_engine(
            f"sqlite:///{path}", poolclass=sa.pool.NullPool,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @event.listens_for(self._engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def data_version(self) -> int | None:
        """A number that changes whenever another connection (another
        process, or this process's worker thread) commits; our own commits
        leave it alone. None when it cannot be read just now.

        Read at most once per turn of the event loop: every request served
        in a turn arrived before the turn began, so it still sees every
        change committed before it arrived.
        """
        if self._data_version is None:
            try:
                self._data_version = self._loop_raw.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.OperationalError:
                return None
            asyncio.get_running_loop().call_soon(self._forget_data_version)
        return self._data_version

    def _forget_data_version(self) -> None:
        self._data_version = None

    def _in_thread(self, begin: str, work: Work[T]) -> T:
        if self._thread_raw is None:
            self._thread_raw = fastsqlite.connect(self._path, BUSY_TIMEOUT_SECONDS * 1000)
        return _transaction(self._thread_raw, begin, work)

    async def read(self, work: Work[T]) -> T:
        try:
            return _transaction(self._loop_raw, "BEGIN", work)
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
        return await self._thread_transaction("BEGIN", work)

    async def _thread_transaction(self, begin: str, work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._in_thread, begin, work)

    async def write(self, work: Work[T]) -> T:
        """Writes that arrive in the same turn of the event loop share one
        transaction (group commit): the commit is most of a write's cost."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        # A write cancelled before its turn is not run: its caller has been
        # told it did not happen.
        batch = [(work, future) for work, future in self._pending if not future.cancelled()]
        self._pending = []
        if not batch:
            return
        raw = self._loop_raw
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            for work, future in batch:
                if _is_busy(error):
                    # Another process is writing: wait for it in the thread.
                    task = asyncio.ensure_future(self._thread_transaction("BEGIN IMMEDIATE", work))
                    _chain(task, future)
                else:
                    future.set_exception(error)
            return
        outcomes = []
        try:
            for work, future in batch:
                outcomes.append((future, *_in_savepoint(raw, work)))
            raw.execute("COMMIT")
        except BaseException as error:  # the commit itself failed: nothing was written
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for future, result, error in outcomes:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY_COMMITS == 0:
            self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting on readers or writers.
        self._in_thread("BEGIN", lambda conn: None)  # opens the thread's connection
        self._thread_raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def migrate(self, work: Work[T]) -> T:
        def run() -> T:
            with self._engine.begin() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def close(self) -> None:
        self._thread.submit(self._close_thread_connection).result()
        self._thread.shutdown(wait=True)
        self._loop_raw.close()
        self._engine.dispose()

    def _close_thread_connection(self) -> None:
        if self._thread_raw is not None:
            self._thread_raw.close()
            self._thread_raw = None


class PostgreSQLRunner:
    def __init__(self, database_url: str, pool_size: int = 10):
        url = make_url(database_url).set(drivername="postgresql+asyncpg")
        self.description = f"PostgreSQL database {url.database} on {url.host or 'localhost'}"
        # hide_parameters: an error's text (and so a logged traceback) would
        # otherwise quote the statement's values: push tokens, message texts.
        self._engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                           pool_pre_ping=True, hide_parameters=True)

    async def _transaction(self, work: Work[T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(work)

    read = write = migrate = _transaction

    def data_version(self) -> None:
        return None  # every process writes through its own connections: no cheap signal

    async def close(self) -> None:
        await self._engine.dispose()


def runner_for(database_url: str) -> SQLiteRunner | PostgreSQLRunner:
    scheme = database_url.split(":", 1)[0]
    if scheme == "sqlite":
        return SQLiteRunner(database_url)
    if scheme in ("postgresql", "postgres"):
        return PostgreSQLRunner(database_url)
    raise DatabaseUrlError(
        f"database_url scheme {scheme!r} is not supported; use sqlite:///PATH or postgresql://..."
    )
