#!/usr/bin/env python3
"""Carriers: app-facing send latency with a fast and a slow carrier, and dispatcher throughput.

    python bench/bench_carriers.py [--duration 10] [--warmup 2] [--slow-seconds 2]
                                   [--rate 40] [--rounds 3]
                                   [--messages 2000] [--conversations 1,4,16,64]
                                   [--drain-seconds 30] [--postgresql-url URL]
                                   [--parts latency,dispatch] [--profile DIR]
                                   [--json PATH] [--keep]

Run from the project root with the project installed (the venv active).
Everything runs on 127.0.0.1 in a temporary directory, each run on a fresh
SQLite file (``--postgresql-url``: a fresh PostgreSQL database instead,
dropped afterwards). The carrier is ``bench/fake_carrier.py``, a small fake
of the voip.ms REST API in its own process; the adapter's account alice
(+12025550101) is made with the CLI with ``--provider vms``, a
``[providers.vms]`` table of type ``voipms`` whose ``base_url`` is the fake.

1. latency: alice sends to numbers outside the service
   (``bench/send_offnet.lua``, cycling through ``--latency-conversations``
   recipients) under wrk, 16 connections, once with a carrier that answers
   at once and once with one that takes ``--slow-seconds`` (2) to answer
   each send (``timeout_seconds`` is set above that), each carrier with its
   own adapter. First ``--rounds`` (3) paced runs per carrier, alternating
   between them, at ``--rate`` (40) sends/s; then each flat out. The web
   request only stores the message and its outbox job, so the two should
   match. Checks: no send waited as long as the slow carrier takes; and in
   the paced runs the carriers' median p50s are within 1.5x or 2 ms of each
   other, and their median p99s likewise. Also shown: what the dispatcher in
   the same process carried meanwhile.
2. dispatch: ``--messages`` (2000) messages are queued before ``serve``
   starts, spread round robin over C recipients (C from ``--conversations``;
   each recipient is one conversation), through ``Store.record_send``, the
   call the send request makes. Then ``serve`` starts with the instant
   carrier and the script polls the fake's count until it has all of them
   (or ``--drain-seconds`` pass: then the rate so far is shown, marked
   "time-boxed"). Rate: messages per second from the first send the carrier
   received to the last. Completion check: the carrier got each message once,
   each conversation in order, and ``outbox list`` shows no job queued or
   leased and all of them done.

``--profile DIR`` records the adapter with py-spy during the latency runs
and shows the share of its busy samples spent by the dispatcher (settling
jobs, leasing, talking to the carrier) and by the web requests.

CPU columns are % of one core during the measured time: the adapter, the
fake carrier, wrk, and "other" (everything else on the machine, i.e. other
people's work, which skews the figures when high).

Exit status: 0 the benchmark ran and its checks passed; 1 a check failed;
2 the benchmark could not run (the reason on one line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import (
    ALICE, BENCH, HOST, ROOT, BenchError, CpuWindow, PostgreSQL, Processes, Terminated,
    WrkResult, WrkSettings, adapter_cli, cancel_time_limit, code_version, free_port,
    install_signal_handlers, machine_description, request, require_wrk, run_wrk, send,
    start_adapter, start_serve, tail, wait_until_answering,
)

PROVIDER = "vms"
API_USER, API_PASSWORD = "bench@example.com", "bench-api-secret"
FAKE = BENCH / "fake_carrier.py"
OFFNET_SCRIPT = BENCH / "send_offnet.lua"
FIRST_RECIPIENT = 13125550100  # +1 312 555 0100, 0101, ...: numbers outside the service
POLL = 0.05  # seconds between looks at the carrier's count


def recipient(index: int) -> str:
    return f"+{FIRST_RECIPIENT + index}"


@dataclass
class LatencyOutcome:
    carrier: str
    delay: float
    load: str  # "paced N/s" (a steady offered load) or "flat out" (as fast as it answers)
    round: int  # paced runs alternate between the carriers, round after round
    result: WrkResult
    cpu: dict[str, float]
    carrier_sends: int  # sendSMS the carrier took during the measured run
    carrier_max_in_flight: int
    backlog: int  # jobs still queued or leased when the run ended


@dataclass
class DispatchOutcome:
    conversations: int
    queued: int
    delivered: int
    seconds: float  # first to last send the carrier received (or to the time box)
    rate: float
    complete: bool
    startup_seconds: float  # serve started -> first send at the carrier
    cpu: dict[str, float]
    order_errors: int
    violations: int
    left: dict[str, int]  # outbox list: state -> jobs, after stopping serve
    carrier_total: int  # sends the carrier had when serve was stopped
    adapter_ms_per_message: float  # adapter CPU per message carried in the window
    carrier_ms_per_message: float


# -- the pieces ------------------------------------------------------------------------


class Scenario:
    """One fresh database, one fake carrier, one adapter config with alice on it."""

    def __init__(self, name: str, tmp: Path, processes: Processes,
                 postgresql: PostgreSQL | None, delay: float, batch: int | None = None):
        self.name, self.processes, self.postgresql = name, processes, postgresql
        self.directory = tmp / name
        self.directory.mkdir()
        self.database = None
        if postgresql:
            self.database, self.database_url = postgresql.create_database()
        else:
            self.database_url = f"sqlite:///{self.directory}/adapter.sqlite3"
        self.fake_port, self.port = free_port(), free_port()
        while self.port == self.fake_port:
            self.port = free_port()
        self.delay = delay
        self.fake = self._start_fake()
        timeout = max(5.0, delay + 3.0)
        self.config = self.directory / "adapter.toml"
        self.config.write_text(
            f"database_url = {json.dumps(self.database_url)}\n"
            f'public_url = "http://{HOST}:{self.port}"\n\n'
            f"[providers.{PROVIDER}]\n"
            'type = "voipms"\n'
            f'api_username = "{API_USER}"\n'
            f'api_password = "{API_PASSWORD}"\n'
            f'base_url = "http://{HOST}:{self.fake_port}/api/v1"\n'
            f"timeout_seconds = {timeout}\n"
            + (f"\n[outbox]\nbatch = {batch}\n" if batch else ""))
        adapter_cli(self.config, "account", "add", ALICE[0], "--number", ALICE[1],
                    "--provider", PROVIDER, "--password", ALICE[2])
        self.server: subprocess.Popen | None = None
        self.log = self.directory / "adapter.log"

    def _start_fake(self) -> subprocess.Popen:
        log = self.directory / "carrier.log"
        fake = self.processes.start(f"carrier {self.name}", [
            sys.executable, str(FAKE), "--port", str(self.fake_port), "--delay", str(self.delay),
            "--username", API_USER, "--password", API_PASSWORD], log)
        wait_until_answering(fake, log, lambda: self.carrier_stats(timeout=1.0) is not None)
        return fake

    def carrier_stats(self, timeout: float = 5.0) -> dict | None:
        status, body = request(f"http://{HOST}:{self.fake_port}/stats", timeout=timeout)
        return json.loads(body) if status == 200 else None

    def start_adapter(self) -> subprocess.Popen:
        self.server = start_adapter(self.processes, self.config, self.port, self.log)
        return self.server

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def jobs(self, state: str, limit: int) -> int:
        """How many outbox jobs are in ``state`` (``outbox list``, at most ``limit``)."""
        out = adapter_cli(self.config, "outbox", "list", "--state", state,
                          "--limit", str(limit))
        return len(out.splitlines())

    def jobs_by_state(self, limit: int) -> dict[str, int]:
        """Outbox jobs per state, from one ``outbox list`` (at most ``limit`` jobs)."""
        counts = dict.fromkeys(("queued", "leased", "done", "failed", "dead"), 0)
        for line in adapter_cli(self.config, "outbox", "list", "--limit",
                                str(limit)).splitlines():
            state = line.split("\t")[1]
            counts[state] = counts.get(state, 0) + 1
        return counts

    def check_alive(self) -> None:
        for what, proc, log in (("adapter", self.server, self.log),
                                ("fake carrier", self.fake, self.directory / "carrier.log")):
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"{self.name}: the {what} exited ({proc.returncode}):\n"
                                 f"{tail(log)}")

    def close(self) -> None:
        try:
            for proc in (self.server, self.fake):
                if proc is not None:
                    self.processes.stop(proc)
        finally:
            if self.database:
                self.postgresql.drop_database(self.database)


def wait_for_carrier(scenario: Scenario, sends: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        stats = scenario.carrier_stats()
        if stats["sends"] >= sends:
            return stats
        scenario.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{scenario.name}: the carrier got {stats['sends']} of {sends} "
                             f"sends within {seconds:.0f}s; adapter log:\n{tail(scenario.log)}")
        time.sleep(POLL)


# -- profiling (optional) ------------------------------------------------------------

# Where the adapter's busy samples went, by the first pattern found in a stack.
PROFILE_KINDS = (
    ("dispatcher: settle", "settle_job.<locals>.work"),
    ("dispatcher: lease", "lease (adapter/store/outbox.py"),
    ("dispatcher: carrier HTTP", ("Dispatcher.", "httpx2/", "httpcore2/", "providers/")),
    ("web: record_send", "record_send.<locals>.work"),
    ("web: rest", ("uvicorn/protocols", "starlette/", "adapter/acrobits/", "adapter/app.py")),
)


def start_profiler(processes: Processes, pid: int, output: Path, seconds: int) -> subprocess.Popen:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy: pip install py-spy")
    log = output.with_suffix(".log")
    proc = processes.start(f"py-spy {output.stem}", [
        py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
        "--format", "raw", "--threads", "--nonblocking", "--output", str(output)], log)
    deadline = time.monotonic() + 30
    while "Sampling process" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"py-spy did not start sampling pid {pid}: {tail(log, 5)}")
        time.sleep(0.02)
    return proc


def profile_shares(path: Path) -> dict[str, float]:
    """% of the busy samples in each of PROFILE_KINDS (and "other")."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        total += int(number)
        kind = next((name for name, patterns in PROFILE_KINDS
                     if any(p in stack for p in (patterns if isinstance(patterns, tuple)
                                                 else (patterns,)))), "other")
        counts[kind] = counts.get(kind, 0) + int(number)
    shares = {name: 100.0 * counts.get(name, 0) / total if total else 0.0
              for name, _patterns in PROFILE_KINDS}
    shares["other"] = 100.0 * counts.get("other", 0) / total if total else 0.0
    dispatcher = sum(v for k, v in shares.items() if k.startswith("dispatcher"))
    return {"dispatcher in all": dispatcher, **shares}


# -- 1. latency ------------------------------------------------------------------------


def bench_latency(settings: WrkSettings, processes: Processes, tmp: Path,
                  postgresql: PostgreSQL | None, carriers: dict[str, float],
                  conversations: int, rate: float, rounds: int, batch: int,
                  profile_dir: Path | None = None,
                  profiles: dict | None = None) -> list[LatencyOutcome]:
    """The paced runs first, in rounds alternating between the carriers (each
    with its own adapter, both running meanwhile), then each flat out."""
    print(f"latency: {conversations} recipients, [outbox] batch {batch}; "
          + ", ".join(f"{carrier} carrier answers after {delay:g}s"
                      for carrier, delay in carriers.items()), flush=True)
    scenarios: dict[str, Scenario] = {}
    try:
        for carrier, delay in carriers.items():
            scenarios[carrier] = start_latency_scenario(carrier, delay, tmp, processes,
                                                        postgresql, batch)
        outcomes = []
        if rate > 0:
            pause = settings.connections * 1000.0 / rate
            for number in range(1, rounds + 1):
                for carrier, scenario in scenarios.items():
                    outcomes.append(measure_sends(
                        settings, processes, scenario, carrier, f"paced {rate:g}/s",
                        [str(conversations), f"{pause:g}"], number))
        for carrier in carriers:
            # Flat out, the slow carrier's backlog grows without bound: this
            # is each adapter's last run.
            outcomes.append(measure_sends(settings, processes, scenarios[carrier], carrier,
                                          "flat out", [str(conversations)], 1,
                                          profile_dir, profiles))
            scenarios.pop(carrier).close()
        return outcomes
    finally:
        for scenario in scenarios.values():
            scenario.close()


def start_latency_scenario(carrier: str, delay: float, tmp: Path, processes: Processes,
                           postgresql: PostgreSQL | None, batch: int) -> Scenario:
    scenario = Scenario(f"latency-{carrier}", tmp, processes, postgresql, delay, batch)
    try:
        scenario.start_adapter()
        # The first send pays the argon2 check; it must reach the carrier.
        answer = send(scenario.base, ALICE, recipient(0), "hello carrier")
        if not answer.get("sms_id"):
            raise BenchError(f"the first off-net send answered {answer}")
        wait_for_carrier(scenario, 1, delay + 15.0)
    except BaseException:
        scenario.close()
        raise
    return scenario


def measure_sends(settings: WrkSettings, processes: Processes, scenario: Scenario, carrier: str,
                  load: str, script_args: list[str], round_number: int,
                  profile_dir: Path | None = None, profiles: dict | None = None) -> LatencyOutcome:
    url = f"{scenario.base}/acrobits/send"
    label = f"{load}, round {round_number}" if load.startswith("paced") else load
    print(f"  {carrier}, {label}: warm-up {settings.warmup}s, then {settings.duration}s ...",
          flush=True)
    warmup = None
    if settings.warmup > 0:
        warmup = run_wrk(settings, url, OFFNET_SCRIPT, settings.warmup, script_args)
    profiler = output = None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        output = profile_dir / f"latency-{carrier}.collapsed"
        profiler = start_profiler(processes, scenario.server.pid, output, settings.duration)
    before = scenario.carrier_stats()
    groups = {"adapter": lambda: [scenario.server.pid], "carrier": lambda: [scenario.fake.pid]}
    with CpuWindow(groups) as cpu:
        result = run_wrk(settings, url, OFFNET_SCRIPT, settings.duration, script_args)
    after = scenario.carrier_stats()
    if profiler is not None:
        try:
            profiler.wait(timeout=settings.duration + 30)
        except subprocess.TimeoutExpired:
            pass
        processes.stop(profiler)
        profiles[carrier] = profile_shares(output)
    scenario.check_alive()
    jobs = scenario.jobs_by_state(10**7)
    result.warmup_non_2xx = warmup.non_2xx if warmup else 0
    result.server_cpu_percent = cpu.percent["adapter"]
    result.wrk_cpu_percent = cpu.percent["wrk"]
    result.other_cpu_percent = cpu.percent["other"]
    if after["violations"]:
        raise BenchError(f"the fake carrier saw requests the API would refuse: "
                         f"{after['violation_samples']}")
    return LatencyOutcome(carrier, scenario.delay, load, round_number, result, dict(cpu.percent),
                          after["sends"] - before["sends"], after["max_in_flight"],
                          jobs["queued"] + jobs["leased"])


# -- 2. dispatch -----------------------------------------------------------------------


def queue_messages(database_url: str, count: int, conversations: int) -> None:
    """Queue ``count`` messages from alice, round robin over the recipients,
    through the store call the send request makes (no server running)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    from adapter.store import NewMessage, Store

    async def queue() -> None:
        store = Store(database_url)
        try:
            account = await store.account(ALICE[0])
            for index in range(count):
                # "#N" lets the fake check that each conversation arrives in order.
                message = NewMessage(peer=recipient(index % conversations),
                                     body=f"bench {index // conversations} #{index}")
                stored = await store.record_send(account, message, PROVIDER)
                if stored.status != "queued":
                    raise BenchError(f"a queued message came back {stored.status!r}")
        finally:
            await store.close()

    asyncio.run(queue())


def bench_dispatch(processes: Processes, tmp: Path, postgresql: PostgreSQL | None,
                   count: int, conversations: int, drain_seconds: float) -> DispatchOutcome:
    print(f"dispatch: {count} messages in {conversations} conversation(s)", flush=True)
    scenario = Scenario(f"dispatch-{conversations}", tmp, processes, postgresql, 0.0)
    try:
        started = time.monotonic()
        queue_messages(scenario.database_url, count, conversations)
        queued = scenario.jobs("queued", count + 1)
        print(f"  queued {queued} jobs in {time.monotonic() - started:.1f}s; starting serve",
              flush=True)
        if queued != count:
            raise BenchError(f"outbox list shows {queued} queued jobs, not {count}")
        groups = {"adapter": lambda: [scenario.server.pid],
                  "carrier": lambda: [scenario.fake.pid]}
        cpu = CpuWindow(groups)
        spawned = time.monotonic()
        # The dispatcher starts with the server, before it answers HTTP.
        scenario.server = start_serve(processes, scenario.config, scenario.port, scenario.log)
        deadline = window_sends = None
        while True:
            stats = scenario.carrier_stats()
            if stats["first_at"] is not None and deadline is None:
                deadline = stats["first_at"] + drain_seconds
                # CPU is counted from the first time a send is seen at the carrier.
                cpu.__enter__()
                window_sends = stats["sends"]
            if stats["sends"] >= count:
                break
            scenario.check_alive()
            if deadline is not None and stats["now"] > deadline:
                break
            if deadline is None and time.monotonic() - spawned > drain_seconds + 30:
                raise BenchError(f"the carrier got nothing within {drain_seconds + 30:.0f}s "
                                 f"of starting serve:\n{tail(scenario.log)}")
            time.sleep(POLL)
        cpu.__exit__(None, None, None)
        window_sends = stats["sends"] - window_sends
        complete = stats["sends"] >= count
        end = stats["last_at"] if complete else stats["now"]
        seconds = end - stats["first_at"]
        delivered = stats["sends"]
        # Between the first and the last send, count - 1 more arrived.
        rate = (delivered - 1) / seconds if complete and seconds > 0 else (
            delivered / seconds if seconds > 0 else 0.0)
        # The fake's clock (time.monotonic) is the machine's, as is ours.
        startup = stats["first_at"] - spawned
        if complete:  # the last settles may still be committing
            deadline = time.monotonic() + 15
            while (scenario.jobs("done", count + 1) < count
                   and time.monotonic() < deadline):
                time.sleep(0.2)
        # Stopped, the outbox holds still: count its states at one moment.
        processes.stop(scenario.server)
        final = scenario.carrier_stats()
        left = scenario.jobs_by_state(count + 1)
        # CPU per message carried during the window (0: all went before the first look).
        ms_per_message = {name: (10.0 * percent * cpu.elapsed / window_sends
                                 if window_sends else 0.0)
                          for name, percent in cpu.percent.items()}
        return DispatchOutcome(conversations, count, delivered, seconds, rate, complete,
                               startup, dict(cpu.percent), final["order_errors"],
                               final["violations"], left, final["sends"],
                               ms_per_message["adapter"], ms_per_message["carrier"])
    finally:
        scenario.close()


# -- report ------------------------------------------------------------------------


# Paced runs "match" when the instant carrier's p50 and p99 are each within
# MATCH_RATIO of the slow carrier's, or within MATCH_MS of it (at a couple of
# milliseconds, scheduling noise alone moves figures by more than a ratio).
# Compared: each carrier's median over the rounds. The p99 of one 10 s run
# at 40/s is its 4th-slowest answer, and moves by a few milliseconds from one
# run of the same carrier to the next.
MATCH_RATIO, MATCH_MS = 1.5, 2.0


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= MATCH_MS or max(a, b) <= MATCH_RATIO * min(a, b)


def latency_checks(outcomes: list[LatencyOutcome]) -> list[tuple[str, str, bool]]:
    found = []
    for o in outcomes:
        r = o.result
        bad = r.non_2xx + r.warmup_non_2xx + r.socket_errors
        found.append((f"latency, {o.carrier}, {_label(o)}: only 2xx answers", f"{bad} bad",
                      bad == 0))
        if o.delay > 0:
            found.append((f"latency, {o.carrier}, {_label(o)}: no send waited {o.delay:g}s",
                          f"max {r.max_ms:.0f} ms", r.max_ms < o.delay * 1000))
    for load, fast, slow in _pairs(outcomes):
        if load.startswith("paced"):
            found.append((f"latency, {load}: instant and slow carrier match (medians)",
                          f"p50 {fast.p50_ms:.2f}/{slow.p50_ms:.2f} ms, "
                          f"p99 {fast.p99_ms:.2f}/{slow.p99_ms:.2f} ms",
                          _close(fast.p50_ms, slow.p50_ms) and _close(fast.p99_ms, slow.p99_ms)))
    return found


def _label(o: LatencyOutcome) -> str:
    return f"{o.load} #{o.round}" if o.load.startswith("paced") else o.load


@dataclass
class Medians:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _pairs(outcomes: list[LatencyOutcome]) -> list[tuple[str, Medians, Medians]]:
    """(load, instant, slow): each carrier's medians over the rounds of that load."""
    def medians(delayed: bool, load: str) -> Medians | None:
        runs = [o.result for o in outcomes if (o.delay > 0) == delayed and o.load == load]
        if not runs:
            return None
        return Medians(*(statistics.median(getattr(r, name) for r in runs)
                         for name in ("requests_per_second", "p50_ms", "p99_ms")))

    loads = list(dict.fromkeys(o.load for o in outcomes))
    found = [(load, medians(False, load), medians(True, load)) for load in loads]
    return [(load, fast, slow) for load, fast, slow in found if fast and slow]


def dispatch_checks(outcomes: list[DispatchOutcome]) -> list[tuple[str, str, bool]]:
    found = []
    for o in outcomes:
        name = f"dispatch, {o.conversations} conv."
        found.append((f"{name}: carrier saw only valid requests, in order",
                      f"{o.violations} invalid, {o.order_errors} out of order",
                      o.violations == 0 and o.order_errors == 0))
        if o.complete:
            ok = (o.delivered == o.queued and o.left["done"] == o.queued
                  and o.left["queued"] == o.left["leased"] == 0)
            found.append((f"{name}: each message sent once, all jobs done",
                          f"{o.delivered} sent, jobs {o.left}", ok))
        else:
            total = o.left["queued"] + o.left["leased"] + o.left["done"]
            found.append((f"{name}: (time-boxed) no job lost",
                          f"{o.delivered} sent, jobs {o.left}",
                          total == o.queued and o.left["done"] <= o.carrier_total))
    return found


def report(latency: list[LatencyOutcome], dispatch: list[DispatchOutcome],
           settings: WrkSettings, version: str, engine: str, batch_info: str,
           profiles: dict[str, dict[str, float]]) -> bool:
    print()
    print(f"adapter code: {version}; {machine_description()}; database: {engine}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if latency:
        print(f"1. app-facing send latency (off-net, wrk {settings.threads} threads, "
              f"{settings.connections} connections, {settings.duration}s after "
              f"{settings.warmup}s warm-up)")
        print(f"{'carrier':<14} {'load':<15} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8} {'bad':>5} {'adapter':>8} {'carrier':>8} {'wrk':>5} {'other':>6} "
              f"{'carried/s':>10} {'backlog':>8} {'ms/send':>8}")
        for o in latency:
            r = o.result
            label = f"{o.carrier} {o.delay:g}s"
            print(f"{label:<14} {_label(o):<15} {r.requests_per_second:>8.1f} {r.p50_ms:>8.2f} "
                  f"{r.p99_ms:>8.2f} {r.max_ms:>8.1f} "
                  f"{r.non_2xx + r.warmup_non_2xx + r.socket_errors:>5} "
                  f"{o.cpu['adapter']:>7.0f}% {o.cpu['carrier']:>7.0f}% {o.cpu['wrk']:>4.0f}% "
                  f"{o.cpu['other']:>5.0f}% {o.carrier_sends / settings.duration:>10.1f} "
                  f"{o.backlog:>8} {10.0 * o.cpu['adapter'] / r.requests_per_second:>8.2f}")
        print("('paced N/s': each connection pauses so that the offered load is about N sends/s; "
              "'flat out': as many as the adapter answers. 'carried/s': sends the carrier "
              "received per second during the run, from the dispatcher in the same process; "
              "'backlog': jobs still queued or leased at the end; 'ms/send': adapter CPU per "
              "answered send, including what its dispatcher did meanwhile)")
        for load, fast, slow in _pairs(latency):
            rps = slow.requests_per_second / fast.requests_per_second
            print(f"{load}, slow/instant{' (medians)' if load.startswith('paced') else ''}: "
                  f"req/s {rps:.2f}, p50 {slow.p50_ms / fast.p50_ms:.2f}, "
                  f"p99 {slow.p99_ms / fast.p99_ms:.2f}"
                  + ("" if load.startswith("paced") else
                     ": flat out, the dispatcher carrying the instant carrier's sends takes CPU "
                     "from the requests (see 'carried/s' and 'ms/send')"))
        for carrier, shares in profiles.items():
            print(f"profile, {carrier} carrier (share of the adapter's busy samples): "
                  + ", ".join(f"{name} {share:.0f}%" for name, share in shares.items()))
    if dispatch:
        print(f"2. dispatcher throughput, instant carrier ({batch_info})")
        print(f"{'conversations':>13} {'sent':>11} {'seconds':>8} {'msg/s':>8} {'startup s':>9} "
              f"{'adapter':>8} {'carrier':>8} {'other':>6} {'ms/msg':>7}  note")
        for o in dispatch:
            note = "complete" if o.complete else "time-boxed"
            print(f"{o.conversations:>13} {o.delivered:>5}/{o.queued:<5} {o.seconds:>8.2f} "
                  f"{o.rate:>8.1f} {o.startup_seconds:>9.2f} {o.cpu['adapter']:>7.0f}% "
                  f"{o.cpu['carrier']:>7.0f}% {o.cpu['other']:>5.0f}% "
                  f"{o.adapter_ms_per_message:>7.2f}  {note}")
        print("(msg/s: from the first send the carrier received to the last, or to the time "
              "box; 'startup s': from starting serve to the carrier's first send; CPU from the "
              "first send seen at the carrier to the end, in % of one core; 'ms/msg': adapter "
              "CPU per message carried in that time)")
    found = latency_checks(latency) + dispatch_checks(dispatch)
    for what, value, ok in found:
        print(f"  {'PASS' if ok else 'FAIL'}  {what:<58} {value}")
    return all(ok for _what, _value, ok in found)


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="latency,dispatch",
                        help="which parts to run: latency, dispatch (both)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--timeout", type=int, default=5, help="wrk per-request timeout, s (5)")
    parser.add_argument("--slow-seconds", type=float, default=2.0,
                        help="how long the slow carrier takes to answer each send (2)")
    parser.add_argument("--rate", type=float, default=40.0,
                        help="sends/s of the paced latency runs (40; 0: flat out only)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="paced runs per carrier, alternating; the check compares the "
                             "carriers' medians (3)")
    parser.add_argument("--latency-batch", type=int, default=100,
                        help="[outbox] batch of the latency runs (100: the slow carrier then "
                             "has room for 2 s x 40/s = 80 sends in flight)")
    parser.add_argument("--latency-conversations", type=int, default=100,
                        help="recipients the latency runs cycle through (100: one "
                             "conversation's sends go one at a time, so a 2 s carrier "
                             "carries at most this many / 2 s)")
    parser.add_argument("--messages", type=int, default=2000,
                        help="messages queued for each dispatch run (2000)")
    parser.add_argument("--conversations", default="1,4,16,64",
                        help="comma-separated recipient counts, one dispatch run each (1,4,16,64)")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="time box of a dispatch run from the carrier's first send (30)")
    parser.add_argument("--postgresql-url", metavar="URL",
                        help="run on fresh databases on this PostgreSQL server (a role that "
                             "may create databases) instead of SQLite files")
    parser.add_argument("--max-seconds", type=int, default=900,
                        help="stop everything if the whole run takes longer (900)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="record the adapter with py-spy during the latency runs into DIR "
                             "and show where its time went (slows the figures)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (databases, logs)")
    args = parser.parse_args(argv)
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not args.parts or args.parts - {"latency", "dispatch"}:
        parser.error("--parts takes latency, dispatch or both")
    try:
        args.conversations = [int(c) for c in args.conversations.split(",") if c.strip()]
    except ValueError:
        parser.error("--conversations takes comma-separated whole numbers")
    if not args.conversations or min(args.conversations) < 1 or max(args.conversations) > 9000:
        parser.error("--conversations must be between 1 and 9000")
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --connections and --threads must be positive")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    if args.messages < 2 or args.drain_seconds <= 0 or args.slow_seconds <= 0:
        parser.error("--messages must be at least 2, --drain-seconds and --slow-seconds "
                     "positive")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= args.latency_conversations <= 9000:
        parser.error("--latency-conversations must be between 1 and 9000")
    return args


def outbox_settings() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    from adapter.config import OutboxConfig

    defaults = OutboxConfig()
    return (f"[outbox] defaults: batch {defaults.batch}, poll_seconds {defaults.poll_seconds:g}, "
            f"lease_seconds {defaults.lease_seconds:g}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.profile = args.profile.resolve()
    settings = WrkSettings(connections=args.connections, threads=args.threads,
                           duration=args.duration, warmup=args.warmup, timeout=args.timeout)
    version = code_version()
    processes = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="adapter-bench-carriers-"))
    postgresql = None
    install_signal_handlers(args.max_seconds)
    try:
        if args.postgresql_url:
            postgresql = PostgreSQL(args.postgresql_url)
            engine = f"PostgreSQL {postgresql.version()}"
        else:
            engine = "SQLite"
        latency: list[LatencyOutcome] = []
        profiles: dict[str, dict[str, float]] = {}
        if "latency" in args.parts:
            require_wrk()
            latency = bench_latency(settings, processes, tmp, postgresql,
                                    {"instant": 0.0, "slow": args.slow_seconds},
                                    args.latency_conversations, args.rate, args.rounds,
                                    args.latency_batch, args.profile, profiles)
        dispatch: list[DispatchOutcome] = []
        if "dispatch" in args.parts:
            for conversations in args.conversations:
                dispatch.append(bench_dispatch(processes, tmp, postgresql, args.messages,
                                               conversations, args.drain_seconds))
        batch_info = outbox_settings()
        passed = report(latency, dispatch, settings, version, engine, batch_info, profiles)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)

            def rounded(d: dict) -> dict:
                return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}

            args.json.write_text(json.dumps({
                "settings": asdict(settings), "machine": machine_description(),
                "code": version, "database": engine, "outbox": batch_info,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "latency": [{**rounded({k: v for k, v in asdict(o).items()
                                        if k not in ("result", "cpu")}),
                             "cpu_percent": rounded(o.cpu),
                             **rounded({k: v for k, v in asdict(o.result).items()
                                        if k != "raw"})} for o in latency],
                "profile_shares_percent": {c: rounded(v) for c, v in profiles.items()},
                "dispatch": [{**rounded({k: v for k, v in asdict(o).items() if k != "cpu"}),
                              "cpu_percent": rounded(o.cpu)} for o in dispatch],
            }, indent=2) + "\n")
        return 0 if passed else 1
    except BenchError as exc:
        print(f"bench_carriers: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_carriers: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"bench_carriers: terminated by signal {exc.signum}", file=sys.stderr)
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
