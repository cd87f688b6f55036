"""Shared fixtures: a real SQLite file, the real app served over loopback HTTP.

Nothing of the adapter is mocked: accounts are made through the CLI's own
entry point, and requests travel over a real socket to uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import uvicorn

from adapter import cli
from tests import postgresql
from adapter.app import create_app
from adapter.config import Config, load_config
from adapter.store import Job, Store


# Fixtures of the fakes that every kind of test may use, found by name.
pytest_plugins = ["tests.push.fake_push"]


def pytest_addoption(parser):
    parser.addoption(
        "--db", action="append", choices=["sqlite", "postgresql"], dest="databases",
        help="run database tests on this engine (repeatable); default: SQLite, plus "
             f"PostgreSQL when ${postgresql.ADMIN_URL_VARIABLE} names a server",
    )


def pytest_generate_tests(metafunc):
    if "database_engine" in metafunc.fixturenames:
        metafunc.parametrize("database_engine", selected_engines(metafunc.config))


def selected_engines(config) -> list[str]:
    chosen = config.getoption("databases")
    if chosen and "postgresql" in chosen and not postgresql.admin_url():
        raise pytest.UsageError(
            f"--db postgresql needs ${postgresql.ADMIN_URL_VARIABLE}, e.g. "
            "postgresql://user:pass@127.0.0.1:5432/postgres (a role that may CREATE DATABASE)"
        )
    if chosen:
        return list(dict.fromkeys(chosen))
    return ["sqlite", "postgresql"] if postgresql.admin_url() else ["sqlite"]


def pytest_report_header(config):
    return f"database engines: {', '.join(selected_engines(config))}"


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def empty_database_url(database_engine: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database with nothing in it, not even the schema, on the
    engine this test run is for (for tests of migrations)."""
    if database_engine == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.sqlite3"
    else:
        with postgresql.fresh_database() as url:
            yield url


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Iterator[Callable[[str], str]]:
    """Per engine, a database migrated once per test session: what a test
    gets as ``database_url`` is a copy, which costs a fraction of running
    every migration again. Returns a path (SQLite) or a database name."""
    made: dict[str, str] = {}
    with contextlib.ExitStack() as stack:

        def template(engine: str) -> str:
            if engine not in made:
                if engine == "sqlite":
                    path = tmp_path_factory.mktemp("template") / "adapter.sqlite3"
                    url, made[engine] = f"sqlite:///{path}", str(path)
                else:
                    url = stack.enter_context(postgresql.fresh_database())
                    made[engine] = url.rsplit("/", 1)[1]
                asyncio.run(_migrate(url))
            return made[engine]

        yield template


async def _migrate(url: str) -> None:
    store = Store(url)
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.fixture
def database_url(database_engine: str, tmp_path: Path, migrated_template) -> Iterator[str]:
    """A fresh database on the engine this test run is for, with the schema
    in place and nothing else (``empty_database_url`` has no schema)."""
    template = migrated_template(database_engine)
    if database_engine == "sqlite":
        path = tmp_path / "adapter.sqlite3"
        # Owner-only, as the adapter makes its own database file.
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as copy:
            copy.write(Path(template).read_bytes())
        yield f"sqlite:///{path}"
    else:
        with postgresql.fresh_database(template) as url:
            yield url


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    """A config file for a fresh database (see ``database_url``)."""
    path = tmp_path / "adapter.toml"
    path.write_text(
        f'database_url = "{database_url}"\n'
        'public_url = "http://127.0.0.1:1"\n'
        # argon2id at its floor: tests hash and check hundreds of passwords
        # (production keeps argon2-cffi's defaults; tests/test_passwords.py).
        "[passwords]\ntime_cost = 1\nmemory_kib = 8\nparallelism = 1\n"
        # Retries in tests come quickly; the backoff shape is the same.
        "[outbox]\nretry_base_seconds = 0.05\nretry_max_seconds = 0.5\npoll_seconds = 0.05\n"
    )
    return path


@pytest.fixture
def config(config_file: Path) -> Config:
    return load_config(str(config_file), environ={})


def run_cli(config_file: Path, *args: str) -> int:
    return cli.main(["--config", str(config_file), *args])


def outbox_jobs(config_file: Path) -> list[Job]:
    """The outbox as ``outbox list`` shows it (newest first), read through the
    store rather than from the command's text."""
    async def read() -> list[Job]:
        store = Store(load_config(str(config_file), environ={}).database_url)
        try:
            return await store.jobs()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def add_account(config_file: Path) -> Callable[..., None]:
    """Create an account through the real CLI entry point."""

    def add(username: str, number: str, password: str = "correct horse", **options: str) -> None:
        extra = [item for key, value in options.items()
                 for item in (f"--{key.replace('_', '-')}", value)]
        status = run_cli(config_file, "account", "add", username, "--number", number,
                         "--password", password, *extra)
        assert status == 0, f"account add {username} failed"

    return add


@dataclass
class LiveServer:
    url: str
    config: Config
    config_file: Path

    def client(self, **kwargs) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, timeout=10.0, **kwargs)


def bound_socket() -> tuple[socket.socket, str]:
    """A listening-ready socket on a free loopback port, and its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def serving(app, sock: socket.socket | None = None, **settings) -> Iterator[str]:
    """Serve any ASGI ``app`` with uvicorn in a thread; yields its base URL.

    Used for the adapter itself and for the fake carriers and push service;
    ``settings`` are more of uvicorn's (e.g. ``http=``).
    """
    if sock is None:
        sock, url = bound_socket()
    else:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                           **settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), what="server start")
    assert server.started, "server failed to start"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def start_adapter(config_file: Path) -> Iterator[Callable[[str], LiveServer]]:
    """Start the adapter on a free port, its ``public_url`` pointing there.

    ``extra_toml`` is appended to the config file first (e.g. a
    ``[providers.NAME]`` table whose ``base_url`` is a fake carrier's URL).
    """
    with contextlib.ExitStack() as stack:

        def start(extra_toml: str = "") -> LiveServer:
            sock, url = bound_socket()
            text = config_file.read_text().replace("http://127.0.0.1:1", url)
            config_file.write_text(text + extra_toml)
            config = load_config(str(config_file), environ={})
            stack.enter_context(serving(create_app(config), sock))
            return LiveServer(url=url, config=config, config_file=config_file)

        yield start


@pytest.fixture
def live_server(start_adapter) -> LiveServer:
    return start_adapter()


@pytest.fixture
def anyio_backend():
    return "asyncio"
