"""Running store work on a database engine from async code.

Store queries are plain functions over a SQLAlchemy ``Connection``; a runner
executes one such function as one transaction and hands back its result.

SQLite: the stdlib driver in worker threads, one thread hop per transaction
(not per statement). Writes go through a single writer thread, which keeps
them in order within the process without SQLite's sleep-and-retry busy
handler; ``BEGIN IMMEDIATE`` and the busy timeout cover other processes on
the same file. WAL mode lets reads run beside the writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

T = TypeVar("T")
Work = Callable[[sa.Connection], T]

BUSY_TIMEOUT_SECONDS = 10


class DatabaseUrlError(ValueError):
    pass


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise DatabaseUrlError("an SQLite database_url must name a file, e.g. sqlite:///./data/adapter.sqlite3")
    return Path(url.database)


class SQLiteRunner:
    def __init__(self, database_url: str, read_pool_size: int = 8):
        path = sqlite_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
        self.description = f"SQLite file {path}"
        self._reader = self._engine(url, "BEGIN", read_pool_size)
        self._writer = self._engine(url, "BEGIN IMMEDIATE", 1)
        self._write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._read_limiter = anyio.CapacityLimiter(read_pool_size)

    @staticmethod
    def _engine(url: str, begin: str, pool_size: int) -> sa.Engine:
        engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            # Let SQLAlchemy's "begin" below decide how transactions start,
            # instead of the driver's implicit BEGIN before the first write.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql(begin)

        return engine

    @staticmethod
    def _transaction(engine: sa.Engine, work: Work[T]) -> T:
        with engine.begin() as conn:
            return work(conn)

    async def read(self, work: Work[T]) -> T:
        return await anyio.to_thread.run_sync(
            self._transaction, self._reader, work, limiter=self._read_limiter
        )

    async def write(self, work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_thread, self._transaction, self._writer, work)

    async def close(self) -> None:
        self._write_thread.shutdown(wait=True)
        self._reader.dispose()
        self._writer.dispose()


class PostgreSQLRunner:
    """asyncpg through SQLAlchemy's asyncio engine; each work function runs
    in one transaction via ``run_sync`` (no threads: statements await)."""

    def __init__(self, database_url: str, pool_size: int = 10):
        url = make_url(database_url).set(drivername="postgresql+asyncpg")
        self.description = f"PostgreSQL database {url.database} on {url.host or 'localhost'}"
        self._engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                           pool_pre_ping=True)

    async def _transaction(self, work: Work[T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(work)

    read = write = _transaction

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
