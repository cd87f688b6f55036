#!/usr/bin/env python3
"""Request latency while ``account remove`` deletes a big account, against the same load alone.

    python bench/bench_remove.py [--postgresql-url [URL]] [--clients 8] [--duration 10]

What is measured: bench/RESULTS.md.
"""

import argparse
import asyncio
import sys
import time

import aiohttp

from common import ALICE, BOB, POSTGRESQL_URL, BenchError, main, percentiles, table
from tests.test_account_remove_while_serving import (
    CAROL, JOBS, MESSAGES, account_ids, fill, on_database,
)


async def load(base: str, clients: int, until) -> list:
    """Latencies (ms) of the 200 answers, the count of others, and the seconds taken."""
    latencies, failed, started = [], 0, time.monotonic()
    user = {"username": ALICE[0], "password": ALICE[2]}
    calls = [("/acrobits/send", {**user, "to": CAROL, "body": "bench"}),
             ("/acrobits/fetch", {**user, "device": "bench", "last_id": "", "last_sent_id": ""})]

    async def caller(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while not until():
            for path, body in calls:
                sent = time.perf_counter()
                try:
                    async with session.post(base + path, json=body) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - sent) * 1000)
                failed += not ok

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(caller(session) for _ in range(clients)))
    return [latencies, failed, time.monotonic() - started]


def run(bench, args) -> bool:
    adapter = bench.adapter("remove", bench.database("remove", args.postgresql_url))
    for user in (ALICE, BOB, ("carol", CAROL, "pw3")):
        adapter.add(user)
    ids = on_database(adapter.database_url, account_ids)
    on_database(adapter.database_url, lambda conn: fill(conn, ids))
    adapter.serve()
    deadline = time.monotonic() + args.duration
    alone = asyncio.run(load(adapter.base, args.clients, lambda: time.monotonic() > deadline))
    remover = bench.start([sys.executable, "-m", "adapter", "--config", str(adapter.config),
                           "account", "remove", "bob"], bench.tmp / "remove.log")
    removing = asyncio.run(load(adapter.base, args.clients, lambda: remover.poll() is not None))
    if remover.returncode != 0:
        raise BenchError(f"account remove failed: {(bench.tmp / 'remove.log').read_text()}")
    print(f"bob: {MESSAGES} messages, {JOBS} finished jobs; {args.clients} clients; "
          f"{adapter.database_url.split(':')[0]}")
    table(["run", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "non-200", "s"],
          [[name, len(latencies) + failed, f"{len(latencies) / seconds:.0f}",
            *percentiles(latencies), failed, f"{seconds:.1f}"]
           for name, (latencies, failed, seconds) in (("load only", alone),
                                                      ("load + remove", removing))])
    return alone[1] == removing[1] == 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql-url", nargs="?", const=POSTGRESQL_URL,
                        help="on PostgreSQL (default: $ADAPTER_TEST_POSTGRESQL_URL)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers (8)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load alone (10)")
    args = parser.parse_args()
    sys.exit(main(lambda bench: run(bench, args)))
