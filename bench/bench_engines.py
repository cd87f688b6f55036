#!/usr/bin/env python3
"""Send throughput on SQLite and PostgreSQL, with one and with two ``serve`` processes.

    python bench/bench_engines.py [--postgresql-url URL] [--senders 1] [--duration 10]
                                  [--scenarios sqlite-1,sqlite-2,postgresql-1,postgresql-2]

What is measured: bench/RESULTS.md.
"""

import argparse
import asyncio
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from common import ALICE, BOB, POSTGRESQL_URL, Wrk, backend_pids, free_port, main, send, table


def pair(index: int) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    return ((f"sender{index}", f"+1202555{1000 + index:04d}", "pw1"),
            (f"receiver{index}", f"+1202555{3000 + index:04d}", "pw1"))


def add_pairs(database_url: str, count: int) -> None:
    """senderI and receiverI through the store (the CLI would start a process each)."""
    from adapter import passwords
    from adapter.store import Store

    async def add() -> None:
        store, password_hash = Store(database_url), passwords.hash_password("pw1")
        try:
            await store.migrate()
            for index in range(1, count + 1):
                for username, number, _password in pair(index):
                    await store.create_account(username=username, password_hash=password_hash,
                                               number=number, provider=None, display_name=None)
        finally:
            await store.close()

    asyncio.run(add())


def scenario(bench, wrk: Wrk, name: str, args):
    engine, processes = name.rsplit("-", 1)
    database_url = bench.database(name, args.postgresql_url if engine == "postgresql" else None)
    adapter = bench.adapter(name, database_url)
    pairs = [pair(index) for index in range(1, args.senders + 1)]
    if args.senders == 1:
        pairs = [(ALICE, BOB), (BOB, ALICE)]
        for user in (ALICE, BOB):
            adapter.add(user)
    else:
        add_pairs(database_url, args.senders)
    ports = [adapter.port] + [free_port() for _ in range(int(processes) - 1)]
    for port in ports:
        adapter.serve(port)
    with ThreadPoolExecutor(4) as pool:  # each process checks each password once (argon2)
        list(pool.map(lambda job: send(f"http://127.0.0.1:{job[0]}", job[1][0], job[1][1][1],
                                       "hello"), [(p, users) for p in ports for users in pairs]))
    groups = {"adapter": adapter.pids}
    if engine == "postgresql":
        groups["db"] = lambda: backend_pids(database_url)
    result = wrk.measure(f"{adapter.base}/acrobits/send", "send_spread.lua", env={
        "BENCH_PORTS": ",".join(map(str, ports)), "BENCH_SENDERS": str(args.senders),
        "BENCH_THREADS": str(wrk.threads)}, **groups)
    adapter.check_alive()
    adapter.stop()
    split = dict.fromkeys(ports, 0)  # answers per process (per port)
    for port, answers in re.findall(r"^port (\d+): (\d+) answers", result.raw, re.MULTILINE):
        split[int(port)] += int(answers)
    return result, list(split.values())


def run(bench, args) -> bool:
    wrk, results, rows = Wrk.from_args(args), {}, []
    for name in args.scenarios:
        result, split = results[name] = scenario(bench, wrk, name, args)
        rows.append([name, result.rps, result.p50_ms, result.p99_ms, result.bad,
                     f"{result.cpu['adapter']:.0f}%", f"{result.cpu.get('db', 0):.0f}%",
                     f"{result.cpu['other']:.0f}%", 10 * result.cpu["adapter"] / result.rps,
                     10 * result.cpu.get("db", 0) / result.rps, " / ".join(map(str, split))])
    table(["scenario", "req/s", "p50 ms", "p99 ms", "bad", "adapter CPU", "db CPU",
           "other CPU", "adapter ms/req", "db ms/req", "split"], rows)
    ratios = [(f"{top} / {bottom}", results[top][0].rps / results[bottom][0].rps)
              for top, bottom in (("postgresql-1", "sqlite-1"), ("postgresql-2", "sqlite-2"),
                                  ("sqlite-2", "sqlite-1"), ("postgresql-2", "postgresql-1"))
              if top in results and bottom in results]
    print("\nreq/s ratios: " + ", ".join(f"{what} {value:.2f}" for what, value in ratios))
    failed = [name for name, (result, split) in results.items()
              if result.bad or len([n for n in split if n]) != int(name.rsplit("-", 1)[1])]
    print(f"FAIL  non-2xx answers, or a process without answers: {failed}" if failed else
          "PASS  only 2xx answers, every process answered")
    return not failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    Wrk.add_arguments(parser)
    parser.add_argument("--scenarios", default="sqlite-1,sqlite-2,postgresql-1,postgresql-2",
                        type=lambda v: v.split(","))
    parser.add_argument("--senders", type=int, default=1, help="sender/receiver pairs (1)")
    parser.add_argument("--postgresql-url", default=POSTGRESQL_URL)
    arguments = parser.parse_args()
    if any(s.startswith("postgresql") for s in arguments.scenarios) and not arguments.postgresql_url:
        parser.error("PostgreSQL scenarios need --postgresql-url or $ADAPTER_TEST_POSTGRESQL_URL")
    sys.exit(main(lambda bench: run(bench, arguments)))
