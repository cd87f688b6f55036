"""The engine runners: opening the database (private files, errors that say
what is wrong), and transactions under group commit, a busy database and
cancellation."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time

import asyncpg
import pytest
import sqlalchemy as sa

from adapter.store import DatabaseUnavailable, Store
from adapter.store.engine import runner_for, sqlite_path
from adapter.store.migrations import apply_pending
from adapter.store.schema import settings


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_is_private(tmp_path):
    async def use():
        store = Store(f"sqlite:///{tmp_path}/new/data/adapter.sqlite3")
        try:
            await store.migrate()
            await store.secret("webhook_secret:x")
        finally:
            await store.close()

    asyncio.run(use())
    data = tmp_path / "new/data"
    assert mode(tmp_path / "new") == mode(data) == 0o700
    files = list(data.iterdir())
    assert data / "adapter.sqlite3" in files
    for path in files:  # the database and its -wal and -shm files
        assert mode(path) == 0o600, path


@pytest.mark.parametrize("url, problem", [
    ("sqlite:////proc/no-such-dir/a.sqlite3", "cannot create the database directory /proc/no-such-dir"),
    ("sqlite:////proc/a.sqlite3", "cannot create or open the SQLite database /proc/a.sqlite3"),
    ("sqlite:///{tmp_path}", "is a directory"),
])
def test_an_unusable_sqlite_path_says_why(tmp_path, url, problem):
    with pytest.raises(DatabaseUnavailable, match=problem):
        Store(url.format(tmp_path=tmp_path))


# -- transactions: group commit, a busy database, cancellation ----------------------
#
# Straight on the runners of engine.py, on real databases: SQLite runs writes
# on the event loop and shares one commit among the writes of a loop turn,
# sending them to its thread while another connection holds the write lock;
# PostgreSQL runs each write in a transaction of its own, awaiting asyncpg.

DEADLINE = 10.0


@pytest.fixture
async def runner(database_url):
    runner = runner_for(database_url)
    await runner.migrate(apply_pending)
    yield runner
    await runner.close()


def put(key: str, value: str = "v"):
    def work(conn):
        conn.execute(settings.insert(), {"key": key, "value": value})
        return key
    return work


def put_then_refuse(conn):
    conn.execute(settings.insert(), {"key": "refused", "value": "v"})
    raise RuntimeError("refused after writing")


async def stored_keys(runner) -> list[str]:
    return await runner.read(
        lambda conn: sorted(conn.execute(sa.select(settings.c.key)).scalars()))


async def eventually(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE}s waiting for {what}")
        await asyncio.sleep(0.01)


class Ticker:
    """Counts turns of the event loop while a test waits on something else."""

    def __init__(self):
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    async def ticked(self, times: int) -> bool:
        return self.ticks >= times

    def stop(self):
        self._task.cancel()


class OtherWriter:
    """Another connection (the CLI, a second process) holding what a write
    needs until it commits: SQLite's write lock, or on PostgreSQL a lock on
    the settings table that every insert into it waits for."""

    def __init__(self, database_engine: str, database_url: str):
        self.engine, self.url = database_engine, database_url

    async def __aenter__(self):
        if self.engine == "sqlite":
            self.connection = sqlite3.connect(sqlite_path(self.url), isolation_level=None,
                                              timeout=0)
            self.connection.execute("BEGIN IMMEDIATE")
        else:
            self.connection = await asyncpg.connect(self.url)
            await self.connection.execute("BEGIN")
            await self.connection.execute("LOCK TABLE settings IN EXCLUSIVE MODE")
        return self

    async def commit(self):
        if self.connection is None:
            return
        if self.engine == "sqlite":
            self.connection.execute("COMMIT")
            self.connection.close()
        else:
            await self.connection.execute("COMMIT")
            await self.connection.close()
        self.connection = None

    async def __aexit__(self, *exc_info):
        await self.commit()


async def no_transaction_left(runner, database_engine: str, database_url: str) -> bool:
    """Nothing of ours holds a lock or an open transaction."""
    if database_engine == "sqlite":
        probe = sqlite3.connect(sqlite_path(database_url), isolation_level=None, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False  # someone holds the write lock
        finally:
            probe.close()
        connections = [runner._loop_raw, runner._thread_raw]
        return not any(raw is not None and raw.in_transaction for raw in connections)
    watcher = await asyncpg.connect(database_url)
    try:
        return not await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'")
    finally:
        await watcher.close()


@pytest.mark.anyio
@pytest.mark.parametrize("failing", [put_then_refuse, put("a", "duplicate key")],
                         ids=["raises after writing", "violates a constraint"])
async def test_one_failing_write_among_concurrent_ones_leaves_the_others_committed(
        runner, database_engine, database_url, failing):
    commits = getattr(runner, "_commits", None)
    if database_engine == "postgresql":
        # Each write is a transaction of its own there: of two concurrent
        # inserts of one key, the server picks which commits. "a" goes first.
        first = await runner.write(put("a"))
        rest = await asyncio.gather(runner.write(failing), runner.write(put("b")),
                                    return_exceptions=True)
        outcomes = [first, *rest]
    else:
        outcomes = await asyncio.gather(
            runner.write(put("a")), runner.write(failing), runner.write(put("b")),
            return_exceptions=True)
    assert outcomes[0] == "a" and outcomes[2] == "b"
    assert isinstance(outcomes[1], (RuntimeError, sqlite3.IntegrityError, sa.exc.IntegrityError))
    assert await stored_keys(runner) == ["a", "b"]
    if database_engine == "sqlite":  # the three shared one transaction (group commit)
        assert runner._commits == commits + 1
    assert await no_transaction_left(runner, database_engine, database_url)


@pytest.mark.anyio
async def test_a_write_to_a_busy_database_waits_without_blocking_the_loop(
        runner, database_engine, database_url):
    ticker = Ticker()
    try:
        async with OtherWriter(database_engine, database_url) as other:
            writes = [asyncio.ensure_future(runner.write(put(key))) for key in ("a", "b")]
            await eventually(lambda: ticker.ticked(20), "the loop to keep turning")
            assert not any(write.done() for write in writes)  # still waiting for the lock
            await other.commit()
            assert await asyncio.wait_for(asyncio.gather(*writes), DEADLINE) == ["a", "b"]
    finally:
        ticker.stop()
    assert await stored_keys(runner) == ["a", "b"]
    # Once the other writer is done, a write goes through at once.
    assert await asyncio.wait_for(runner.write(put("c")), 1) == "c"


@pytest.mark.anyio
async def test_a_write_cancelled_before_its_turn_leaves_nothing_behind(
        runner, database_engine, database_url):
    cancelled = asyncio.ensure_future(runner.write(put("cancelled")))
    await asyncio.sleep(0)  # SQLite: it is queued for this turn's group commit
    cancelled.cancel()
    kept = asyncio.ensure_future(runner.write(put("kept")))
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await kept == "kept"
    assert await stored_keys(runner) == ["kept"]
    assert await no_transaction_left(runner, database_engine, database_url)
    assert await asyncio.wait_for(runner.write(put("next")), 1) == "next"


@pytest.mark.anyio
async def test_a_write_cancelled_while_waiting_for_a_busy_database_leaves_no_transaction(
        runner, database_engine, database_url):
    ticker = Ticker()
    try:
        async with OtherWriter(database_engine, database_url):
            waiting = asyncio.ensure_future(runner.write(put("waiting")))  # on the lock
            queued = asyncio.ensure_future(runner.write(put("queued")))  # SQLite: behind it
            await eventually(lambda: ticker.ticked(20), "the writes to wait for the lock")
            waiting.cancel()
            queued.cancel()
            for write in (waiting, queued):
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(write, 1)  # at once, not when the lock frees
    finally:
        ticker.stop()
    await eventually(lambda: no_transaction_left(runner, database_engine, database_url),
                     "the cancelled writes to let go")
    if database_engine == "sqlite":  # whatever was left for the thread has run by now
        await asyncio.get_running_loop().run_in_executor(runner._thread, lambda: None)
    assert await asyncio.wait_for(runner.write(put("next")), 1) == "next"
    keys = await stored_keys(runner)
    assert "queued" not in keys and "next" in keys
    if database_engine == "postgresql":
        assert "waiting" not in keys
    # (SQLite's thread had already begun the first: sqlite3 cannot stop it there.)


@pytest.mark.anyio
async def test_a_request_cancelled_mid_statement_leaves_no_transaction_open(
        runner, database_engine, database_url):
    if database_engine != "postgresql":
        pytest.skip("an SQLite transaction on the loop runs to its end: nothing can cancel it")
    await runner.write(put("k", "before"))

    def update_then_wait(conn):
        conn.execute(settings.update().where(settings.c.key == "k").values(value="cancelled"))
        conn.execute(sa.text("SELECT pg_sleep(60)"))

    cancelled = asyncio.ensure_future(runner.write(update_then_wait))
    await eventually(lambda: is_sleeping(database_url), "the write to reach pg_sleep")
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(cancelled, DEADLINE)
    # The cancelled update's row lock is gone: this would wait on it.
    assert await asyncio.wait_for(runner.write(
        lambda conn: conn.execute(settings.update().where(settings.c.key == "k")
                                  .values(value="after")).rowcount), 1) == 1
    assert await no_transaction_left(runner, database_engine, database_url)
    assert await runner.read(lambda conn: conn.execute(
        sa.select(settings.c.value).where(settings.c.key == "k")).scalar_one()) == "after"


async def is_sleeping(database_url: str) -> bool:
    watcher = await asyncpg.connect(database_url)
    try:
        return await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'SELECT pg_sleep%' AND state = 'active'") > 0
    finally:
        await watcher.close()
