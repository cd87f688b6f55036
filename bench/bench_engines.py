#!/usr/bin/env python3
"""Send throughput on SQLite and PostgreSQL, with one and with two ``serve`` processes.

    python bench/bench_engines.py [--postgresql-url URL] [--duration 10] [--warmup 2]
                                  [--scenarios sqlite-1,sqlite-2,postgresql-1,postgresql-2]
                                  [--senders 1] [--json bench/out/engines.json] [--keep]

Run from the project root with the project installed (the venv active).
``--postgresql-url`` names a role that may create databases (default:
``$ADAPTER_BENCH_POSTGRESQL_URL``, else
``postgresql://adapter:adapter@127.0.0.1:5432/postgres``).

Each scenario gets a fresh database: a new SQLite file in a temporary
directory, or ``CREATE DATABASE adapter_bench_...`` on the PostgreSQL server
(dropped afterwards). Accounts alice and bob are made with the real CLI, then
one or two ``python -m adapter serve`` processes are started on that database,
each on its own port of 127.0.0.1, and wrk drives alice's on-net send to bob
(the request of bench_core.py's "send" scenario) with 16 connections:

- one wrk process, 2 threads of 8 connections each; with two processes,
  ``bench/send_spread.lua`` points each thread at one of the two ports (wrk's
  ``setup()`` hook sets the thread's address), so both processes get 8
  connections at once and wrk's single latency histogram covers every
  request. The script also counts the answers per port, shown as "split".

``--senders N`` (N > 1) replaces alice and bob by N pairs of accounts made
through the store, sender1..N each sending to its own receiver1..N, so that
concurrent sends do not all bump the same two per-account message-id counter
rows (on PostgreSQL those row locks serialise every send of one account).

Columns: req/s, p50 and p99 as wrk reports them; on PostgreSQL, how many
backends of the database waited for a lock, of those running a statement
(sampled from pg_stat_activity); CPU during the measured run
in % of one core for the adapter processes together, the PostgreSQL backends
serving the benchmark's database, wrk, and "other" (everything else on the
machine: other people's work, which skews the figures when high).

Exit status: 0 every scenario ran with only 2xx answers and traffic on every
process; 1 a check failed; 2 the benchmark could not run (one line why).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import (
    ALICE, BENCH, BOB, HOST, ROOT, BenchError, CpuWindow, PostgreSQL, Processes, Terminated,
    WrkResult, WrkSettings, adapter_cli, cancel_time_limit, code_version,
    default_postgresql_url, free_port, install_signal_handlers, machine_description,
    require_wrk, run_wrk, send, start_serve, tail, wait_healthy,
)

SCENARIOS = ("sqlite-1", "sqlite-2", "postgresql-1", "postgresql-2")
SCRIPT = BENCH / "send_spread.lua"


@dataclass
class Outcome:
    scenario: str
    result: WrkResult
    split: dict[str, int]  # port -> answers
    cpu: dict[str, float] = field(default_factory=dict)
    # PostgreSQL: backends of the database, on average over the run, that were
    # running a statement, and of those, waiting for a lock another holds.
    active_backends: float | None = None
    lock_waits: float | None = None


class WaitSampler(threading.Thread):
    """Samples pg_stat_activity for one database every ``every`` seconds, on
    one connection of its own, until :meth:`stop`."""

    def __init__(self, postgresql: PostgreSQL, database: str, every: float = 0.25):
        super().__init__(daemon=True, name="pg wait sampler")
        self.postgresql, self.database, self.every = postgresql, database, every
        self.samples = self.active = self.lock_waits = 0
        self.error: str | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._sample())
        except Exception as exc:  # reported, not fatal: the figures stand without it
            self.error = f"{type(exc).__name__}: {exc}"

    async def _sample(self) -> None:
        connection = await self.postgresql.connect()
        try:
            while not self._stopping.is_set():
                rows = await connection.fetch(
                    "SELECT state, wait_event_type FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()", self.database, timeout=5)
                self.samples += 1
                self.active += sum(1 for row in rows if row["state"] == "active")
                self.lock_waits += sum(1 for row in rows if row["wait_event_type"] == "Lock")
                await asyncio.sleep(self.every)
        finally:
            await connection.close()

    def stop(self) -> tuple[float | None, float | None]:
        self._stopping.set()
        self.join(timeout=10)
        if not self.samples:
            return None, None
        return self.active / self.samples, self.lock_waits / self.samples


# -- one scenario ------------------------------------------------------------------


def write_config(directory: Path, database_url: str, port: int) -> Path:
    config = directory / "adapter.toml"
    config.write_text(f"database_url = {json.dumps(database_url)}\n"
                      f'public_url = "http://{HOST}:{port}"\n')
    return config


def sender(index: int) -> tuple[str, str, str]:
    return (f"sender{index}", f"+1202555{1000 + index:04d}", "pw1")


def receiver(index: int) -> tuple[str, str, str]:
    return (f"receiver{index}", f"+1202555{3000 + index:04d}", "pw1")


def add_pairs(database_url: str, count: int) -> None:
    """Accounts sender1..N and receiver1..N, made through the store (the
    CLI's ``account add`` does the same, one process start per account)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    import asyncio

    from adapter import passwords
    from adapter.store import Store

    password_hash = passwords.hash_password("pw1")

    async def add() -> None:
        store = Store(database_url)
        try:
            await store.migrate()
            for index in range(1, count + 1):
                for username, number, _password in (sender(index), receiver(index)):
                    await store.create_account(username=username, password_hash=password_hash,
                                               number=number, provider=None, display_name=None)
        finally:
            await store.close()

    asyncio.run(add())


def warm_up_senders(ports: list[int], count: int) -> None:
    """Each process verifies each sender's password once (argon2, ~50 ms) before
    the measured runs, a few at a time."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(port, index) for port in ports for index in range(1, count + 1)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda job: send(f"http://{HOST}:{job[0]}", sender(job[1]),
                                       receiver(job[1])[1], "hello"), jobs))


def parse_split(output: str) -> dict[str, int]:
    return {port: int(n) for port, n in re.findall(r"^port (\d+): (\d+) answers", output,
                                                    re.MULTILINE)}


def run_scenario(name: str, settings: WrkSettings, processes: Processes, tmp: Path,
                 postgresql: PostgreSQL | None, senders: int = 1) -> Outcome:
    engine, count = name.rsplit("-", 1)
    count = int(count)
    directory = tmp / name
    directory.mkdir()
    database = None
    if engine == "sqlite":
        database_url = f"sqlite:///{directory}/adapter.sqlite3"
    else:
        database, database_url = postgresql.create_database()
    servers: list[subprocess.Popen] = []
    try:
        ports: list[int] = []
        while len(ports) < count:
            port = free_port()
            if port not in ports:
                ports.append(port)
        config = write_config(directory, database_url, ports[0])
        where = database or database_url
        print(f"{name}: {count} serve process(es) on {where}", flush=True)
        if senders == 1:
            for username, number, password in (ALICE, BOB):
                adapter_cli(config, "account", "add", username, "--number", number,
                            "--password", password)
        else:
            add_pairs(database_url, senders)
        logs = [directory / f"adapter-{port}.log" for port in ports]
        # Start them all before waiting, as a deployment would (they take turns migrating).
        for index, (port, log) in enumerate(zip(ports, logs)):
            servers.append(start_serve(processes, config, port, log, f"adapter {index}"))
        for server, port, log in zip(servers, ports, logs):
            wait_healthy(server, port, log)
        # Each process verifies each password once (argon2) before the runs.
        if senders == 1:
            for port in ports:
                send(f"http://{HOST}:{port}", BOB, ALICE[1], "hello alice")
                send(f"http://{HOST}:{port}", ALICE, BOB[1], "hello bob")
        else:
            warm_up_senders(ports, senders)

        url = f"http://{HOST}:{ports[0]}/acrobits/send"
        env = {"BENCH_PORTS": ",".join(map(str, ports)), "BENCH_SENDERS": str(senders),
               "BENCH_THREADS": str(settings.threads)}
        print(f"  warm-up {settings.warmup}s, then {settings.duration}s ...", flush=True)
        warmup = None
        if settings.warmup > 0:
            warmup = run_wrk(settings, url, SCRIPT, settings.warmup, [], env=env)
        groups = {"adapter": lambda: [s.pid for s in servers]}
        if database:
            groups["database"] = lambda: postgresql.backend_pids(database)
        sampler = WaitSampler(postgresql, database) if database else None
        if sampler:
            sampler.start()
        try:
            with CpuWindow(groups) as cpu:
                result = run_wrk(settings, url, SCRIPT, settings.duration, [], env=env)
        finally:
            active, lock_waits = sampler.stop() if sampler else (None, None)
        if sampler and sampler.error:
            print(f"  (could not sample pg_stat_activity: {sampler.error})", flush=True)
        for server, log in zip(servers, logs):
            if server.poll() is not None:
                raise BenchError(f"{name}: an adapter exited during the run "
                                 f"({server.returncode}):\n{tail(log)}")
        result.warmup_non_2xx = warmup.non_2xx if warmup else 0
        result.server_cpu_percent = cpu.percent["adapter"]
        result.wrk_cpu_percent = cpu.percent["wrk"]
        result.other_cpu_percent = cpu.percent["other"]
        outcome = Outcome(name, result, parse_split(result.raw), dict(cpu.percent),
                          active, lock_waits)
        outcome.cpu.setdefault("database", 0.0)
        return outcome
    finally:
        for server in servers:
            processes.stop(server)
        if database:
            postgresql.drop_database(database)


# -- report ------------------------------------------------------------------------


def checks(outcomes: dict[str, Outcome]) -> list[tuple[str, str, bool]]:
    found = []
    for name, outcome in outcomes.items():
        r = outcome.result
        bad = r.non_2xx + r.warmup_non_2xx + r.socket_errors
        found.append((f"{name}: only 2xx answers, no socket errors",
                      f"{bad} bad", bad == 0))
        expected = int(name.rsplit("-", 1)[1])
        busy = [port for port, n in outcome.split.items() if n > 0]
        found.append((f"{name}: every process answered", f"{len(busy)} of {expected}",
                      len(busy) == expected))
    return found


def lock_column(outcome: Outcome) -> str:
    if outcome.lock_waits is None:
        return "-"
    return f"{outcome.lock_waits:.1f}/{outcome.active_backends:.1f}"


def cpu_per_request(outcome: Outcome, group: str) -> float:
    """Milliseconds of CPU per answered request spent by ``group``."""
    rps = outcome.result.requests_per_second
    return 10.0 * outcome.cpu.get(group, 0.0) / rps if rps else 0.0


def ratio(outcomes: dict[str, Outcome], top: str, bottom: str) -> str:
    if top not in outcomes or bottom not in outcomes:
        return "-"
    return (f"{outcomes[top].result.requests_per_second / outcomes[bottom].result.requests_per_second:.2f}")


def report(outcomes: dict[str, Outcome], settings: WrkSettings, version: str,
           pg_version: str | None, senders: int) -> bool:
    print()
    print(f"adapter code: {version}; {machine_description()}; load average "
          f"{os.getloadavg()[0]:.2f}" + (f"; PostgreSQL {pg_version}" if pg_version else ""))
    print(f"wrk: {settings.threads} threads, {settings.connections} connections in all "
          f"(with two processes: one thread and {settings.connections // settings.threads} "
          f"connections per process), {settings.duration}s after {settings.warmup}s warm-up; "
          + ("alice sends to bob (on-net)" if senders == 1 else
             f"{senders} senders each send to their own receiver (on-net)"))
    print(f"{'scenario':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'requests':>9} {'bad':>5} {'adapter':>8} {'db':>6} {'wrk':>5} {'other':>6} "
          f"{'ms/req':>13} {'lock wait':>10}  split")
    for name, o in outcomes.items():
        r = o.result
        split = " / ".join(str(n) for n in o.split.values())
        print(f"{name:<14} {r.requests_per_second:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.max_ms:>8.1f} {r.requests:>9} "
              f"{r.non_2xx + r.warmup_non_2xx + r.socket_errors:>5} "
              f"{o.cpu['adapter']:>7.0f}% {o.cpu['database']:>5.0f}% {o.cpu['wrk']:>4.0f}% "
              f"{o.cpu['other']:>5.0f}% {cpu_per_request(o, 'adapter'):>6.2f} "
              f"{cpu_per_request(o, 'database'):>6.2f} {lock_column(o):>10}  {split}")
    print("(CPU in % of one core during the measured run: the adapter processes together, "
          "the PostgreSQL backends of the benchmark's database, wrk, and everything else on "
          "the machine; 'ms/req' is the CPU time per request of the adapter processes and of "
          "the database backends; 'lock wait': PostgreSQL backends waiting for a lock / "
          "running a statement, on average (pg_stat_activity every 0.25 s); 'split' is the "
          "answers each process gave)")
    print("ratios of req/s: "
          f"PostgreSQL/SQLite, one process {ratio(outcomes, 'postgresql-1', 'sqlite-1')}; "
          f"PostgreSQL/SQLite, two processes {ratio(outcomes, 'postgresql-2', 'sqlite-2')}; "
          f"two/one process, PostgreSQL {ratio(outcomes, 'postgresql-2', 'postgresql-1')}; "
          f"two/one process, SQLite {ratio(outcomes, 'sqlite-2', 'sqlite-1')}; "
          f"PostgreSQL two processes/SQLite one {ratio(outcomes, 'postgresql-2', 'sqlite-1')}")
    found = checks(outcomes)
    for what, value, ok in found:
        print(f"  {'PASS' if ok else 'FAIL'}  {what:<50} {value}")
    return all(ok for _what, _value, ok in found)


# -- main ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql-url",
                        default=default_postgresql_url(),
                        help="a role that may create databases (default: "
                             "$ADAPTER_BENCH_POSTGRESQL_URL, else %(default)s)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated, of " + ", ".join(SCENARIOS) + " (all)")
    parser.add_argument("--senders", type=int, default=1,
                        help="1: alice sends to bob, as bench_core.py (default); N > 1: N "
                             "accounts each send to their own receiver, so that concurrent "
                             "sends do not all bump the same two message-id counter rows")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2,
                        help="wrk threads (2); with two processes, half go to each")
    parser.add_argument("--timeout", type=int, default=5, help="wrk per-request timeout, s (5)")
    parser.add_argument("--max-seconds", type=int, default=900,
                        help="stop everything if the whole run takes longer (900)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (SQLite files, server logs)")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := [s for s in args.scenarios if s not in SCENARIOS]:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --connections and --threads must be positive")
    if not 1 <= args.senders <= 999:
        parser.error("--senders must be between 1 and 999")
    if args.threads % 2 or args.connections % args.threads:
        parser.error("--threads must be even and divide --connections, so that two processes "
                     "get the same share")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = WrkSettings(connections=args.connections, threads=args.threads,
                           duration=args.duration, warmup=args.warmup, timeout=args.timeout)
    version = code_version()
    processes = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="adapter-bench-engines-"))
    postgresql = pg_version = None
    install_signal_handlers(args.max_seconds)
    try:
        require_wrk()
        if any(s.startswith("postgresql") for s in args.scenarios):
            postgresql = PostgreSQL(args.postgresql_url)
            pg_version = postgresql.version()
        outcomes = {}
        for name in args.scenarios:
            outcomes[name] = run_scenario(name, settings, processes, tmp, postgresql,
                                          args.senders)
        passed = report(outcomes, settings, version, pg_version, args.senders)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "settings": asdict(settings), "machine": machine_description(),
                "code": version, "postgresql": pg_version, "senders": args.senders,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "results": {n: {**{k: round(v, 2) if isinstance(v, float) else v
                                   for k, v in asdict(o.result).items() if k != "raw"},
                                "split": o.split,
                                "pg_active_backends": o.active_backends,
                                "pg_lock_waits": o.lock_waits,
                                "cpu_ms_per_request": {
                                    g: round(cpu_per_request(o, g), 3)
                                    for g in ("adapter", "database")},
                                "cpu_percent": {k: round(v, 1) for k, v in o.cpu.items()}}
                            for n, o in outcomes.items()},
            }, indent=2) + "\n")
        return 0 if passed else 1
    except BenchError as exc:
        print(f"bench_engines: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_engines: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"bench_engines: terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        cancel_time_limit()
        try:
            processes.stop_all()
            if postgresql:
                postgresql.drop_created()
        finally:
            if args.keep:
                print(f"kept {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
