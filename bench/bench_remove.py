#!/usr/bin/env python3
"""Request latency while ``account remove`` deletes a big account, vs. without.

    python bench/bench_remove.py [--postgresql-url URL] [--clients 8] [--duration 10]

Run from the project root with the project installed (the venv active).
In a temporary directory, on 127.0.0.1: alice, bob and carol made with the
real CLI; bob given 10^5 messages and the outbox 10^6 finished jobs by the
same bulk fill as tests/test_account_remove_while_serving.py; then
``python -m adapter serve``. ``--clients`` callers, each sending as alice to
carol and fetching as alice in turn, as fast as answers come:

1. "load only": for ``--duration`` seconds;
2. "load + remove": while ``python -m adapter account remove bob`` runs.

Exit status: 0 done with every request answered 200, 1 some were not, 2 the
benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from common import (
    ALICE, BOB, HOST, ROOT, BenchError, Processes, PostgreSQL, Terminated,
    adapter_cli, cancel_time_limit, code_version, default_postgresql_url, free_port,
    install_signal_handlers, machine_description, start_adapter,
)

sys.path.insert(0, str(ROOT))
from tests.test_account_remove_while_serving import (  # noqa: E402  (the test's own fill)
    CAROL, JOBS, MESSAGES, account_ids, fill, on_database,
)

CAROL_ACCOUNT = ("carol", CAROL, "pw3")


async def load(base: str, clients: int, until) -> tuple[list[float], int, int]:
    """Latencies (ms) of 200 answers, the count of other answers, seconds taken."""
    latencies, failed = [], 0
    user = {"username": ALICE[0], "password": ALICE[2]}
    calls = [("/acrobits/send", {**user, "to": CAROL, "body": "bench"}),
             ("/acrobits/fetch", {**user, "device": "bench", "last_id": "", "last_sent_id": ""})]

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while not until():
            for path, body in calls:
                started = time.perf_counter()
                try:
                    async with session.post(base + path, json=body) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    failed += 1

    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(caller(session) for _ in range(clients)))
    return latencies, failed, time.monotonic() - started


def row(name: str, latencies: list[float], failed: int, seconds: float) -> str:
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return (f"| {name} | {len(latencies) + failed} | {len(latencies) / seconds:.0f} | "
            f"{q[49]:.1f} | {q[89]:.1f} | {q[98]:.1f} | {max(latencies, default=0):.1f} | "
            f"{failed} | {seconds:.1f} |")


def run(args, processes: Processes, tmp: Path, database_url: str) -> bool:
    config = tmp / "adapter.toml"
    port = free_port()
    config.write_text(f'database_url = "{database_url}"\npublic_url = "http://{HOST}:{port}"\n')
    for username, number, password in (ALICE, BOB, CAROL_ACCOUNT):
        adapter_cli(config, "account", "add", username, "--number", number,
                    "--password", password)
    ids = on_database(database_url, account_ids)
    on_database(database_url, lambda conn: fill(conn, ids))
    start_adapter(processes, config, port, tmp / "serve.log")
    base = f"http://{HOST}:{port}"

    deadline = time.monotonic() + args.duration
    alone = asyncio.run(load(base, args.clients, lambda: time.monotonic() > deadline))
    remover = processes.start("remove", [sys.executable, "-m", "adapter", "--config",
                                         str(config), "account", "remove", "bob"],
                              tmp / "remove.log")
    removing = asyncio.run(load(base, args.clients, lambda: remover.poll() is not None))
    if remover.returncode != 0:
        raise BenchError(f"account remove failed: {(tmp / 'remove.log').read_text().strip()}")
    print(f"bob: {MESSAGES} messages, {JOBS} finished jobs in the outbox; "
          f"{args.clients} clients; {database_url.split(':')[0]}")
    print("| run | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | non-200 | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(row("load only", *alone))
    print(row("load + remove", *removing))
    print((tmp / "remove.log").read_text().strip())
    return alone[1] == 0 and removing[1] == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql-url", nargs="?", const=default_postgresql_url(),
                        help="on a new database of this PostgreSQL server (default: SQLite)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers (8)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load only (10)")
    args = parser.parse_args(argv)
    processes = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="adapter-bench-remove-"))
    postgresql = None
    install_signal_handlers(900)
    try:
        print(f"{machine_description()}; code {code_version()}")
        if args.postgresql_url:
            postgresql = PostgreSQL(args.postgresql_url)
            database_url = postgresql.create_database()[1]
        else:
            database_url = f"sqlite:///{tmp}/adapter.sqlite3"
        return 0 if run(args, processes, tmp, database_url) else 1
    except BenchError as exc:
        print(f"bench_remove: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        print(f"bench_remove: terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        cancel_time_limit()
        processes.stop_all()
        if postgresql:
            postgresql.drop_created()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
