#!/usr/bin/env python3
"""Load benchmark of the adapter's two hot paths against a bare Starlette app.

    python bench/bench_core.py [--rounds 3] [--duration 10] [--warmup 2] [--json bench/out/run.json]
                               [--profile bench/out/prof [--py-spy-options=--gil]]

Run from the project root with the project installed (the venv active).
Everything runs on 127.0.0.1 in a temporary directory:

1. ``baseline``: ``bench/baseline_app.py`` (one POST route, same uvicorn
   settings as ``serve``) under a JSON POST the size of a send.
2. ``send``: the real ``python -m adapter serve`` on a fresh SQLite file with
   accounts alice and bob made by the real CLI; alice sends to bob (on-net).
3. ``fetch``: bob's device "bench" fetches after his newest ids, so every
   answer has empty lists.

Each scenario is one wrk run (``--connections`` connections, ``--threads``
threads, ``--duration`` seconds, ``--latency``) after a ``--warmup`` run
whose figures are discarded. The three scenarios run ``--rounds``
times (3), interleaved, each round on a fresh database; the verdict uses
the median over the rounds, since a burst of other work on the machine can
throw one round's baseline by a third. The table shows requests/s, p50, p99, non-2xx
answers and the CPU used by the server, by wrk and by everything else on the
machine (high "other" means the figures are skewed by other work); the
verdict checks the targets below. ``--profile DIR`` also records the server
with py-spy during each adapter scenario (figures from such a run are slowed
by the sampling); ``bench/profile_summary.py`` summarises the recordings.
``bench/out/`` is ignored by git.

Exit status: 0 every target met, 1 a target missed, 2 the benchmark could
not run (the reason on one line).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from common import (  # bench/common.py: helpers shared by the bench scripts
    ALICE, BENCH, BOB, HOST, START_TIMEOUT, BenchError, Processes, Terminated, WrkResult,
    WrkSettings, adapter_cli, children_cpu_seconds, code_version, cpu_seconds, free_port,
    machine_busy_seconds, request, run_wrk, send, tail, wait_until_answering,
)


# Targets (the issue): the adapter's share of the bare framework's throughput.
SEND_RATIO_TARGET = 0.25
FETCH_RATIO_TARGET = 0.40
SEND_P99_TARGET_MS = 25.0
DEVICE = "bench"


def measure(settings: WrkSettings, name: str, url: str, script: Path, server: subprocess.Popen,
            script_args: list[str] = (), profile_dir: Path | None = None,
            processes: Processes | None = None, log_dir: Path | None = None) -> WrkResult:
    """Warm up, then one measured wrk run; optionally under py-spy."""
    print(f"  {name}: warm-up {settings.warmup}s, then {settings.duration}s ...", flush=True)
    warmup = None
    if settings.warmup > 0:
        warmup = run_wrk(settings, url, script, settings.warmup, list(script_args))
    profiler = None
    if profile_dir is not None:
        profiler = start_profiler(processes, server.pid, profile_dir, name, settings.duration,
                                  log_dir)
    server_before, wrk_before = cpu_seconds(server.pid), children_cpu_seconds()
    machine_before, started = machine_busy_seconds(), time.monotonic()
    result = run_wrk(settings, url, script, settings.duration, list(script_args))
    elapsed = time.monotonic() - started
    server_cpu = 100.0 * (cpu_seconds(server.pid) - server_before) / elapsed
    wrk_cpu = 100.0 * (children_cpu_seconds() - wrk_before) / elapsed
    machine_cpu = 100.0 * (machine_busy_seconds() - machine_before) / elapsed
    result.server_cpu_percent, result.wrk_cpu_percent = server_cpu, wrk_cpu
    result.other_cpu_percent = max(0.0, machine_cpu - server_cpu - wrk_cpu)
    result.warmup_non_2xx = warmup.non_2xx if warmup else 0
    if profiler is not None:
        finish_profiler(processes, profiler, settings.duration)
    if server.poll() is not None:
        raise BenchError(f"the {name} server exited during the run ({server.returncode})")
    return result


# -- profiling (optional) ------------------------------------------------------------


PY_SPY_OPTIONS: list[str] = []  # from --py-spy-options


def start_profiler(processes: Processes, pid: int, out_dir: Path, name: str, seconds: int,
                   log_dir: Path) -> subprocess.Popen:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy: pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    # --nonblocking: sample without pausing the server (py-spy refuses it with --native).
    blocking = [] if "--native" in PY_SPY_OPTIONS else ["--nonblocking"]
    args = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
            "--format", "raw", "--threads", *blocking, *PY_SPY_OPTIONS,
            "--output", str(out_dir / f"{name}.collapsed")]
    log = log_dir / f"py-spy-{name}.log"
    proc = processes.start(f"py-spy {name}", args, log)
    # Start measuring once py-spy has attached ("Sampling process ...").
    deadline = time.monotonic() + START_TIMEOUT
    while "Sampling process" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"py-spy did not start sampling pid {pid}: {tail(log, 5)}")
        time.sleep(0.02)
    return proc


def finish_profiler(processes: Processes, proc: subprocess.Popen, seconds: int) -> None:
    try:
        proc.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        pass
    processes.stop(proc)


# -- the scenarios -----------------------------------------------------------------


def write_config(tmp: Path, port: int) -> Path:
    config = tmp / "adapter.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp}/adapter.sqlite3"\n'
        f'public_url = "http://{HOST}:{port}"\n'
    )
    return config


def fetch_newest(base: str, user: tuple[str, str, str]) -> tuple[str, str]:
    """Bring device "bench" up to date: fetch page after page until both lists are empty.

    Returns the (received, sent) cursors the device holds, as the app sends them.
    """
    username, _number, password = user
    last_id = last_sent_id = ""
    for _ in range(100_000):  # a bound; each round moves a cursor at least one page on
        status, body = request(f"{base}/acrobits/fetch", {
            "username": username, "password": password, "last_id": last_id,
            "last_sent_id": last_sent_id, "device": DEVICE,
        })
        if status != 200:
            raise BenchError(f"fetch for {username} answered {status}: {body[:200]!r}")
        answer = json.loads(body)
        received, sent = answer["received_smss"], answer["sent_smss"]
        if not received and not sent:
            return last_id, last_sent_id
        if received:
            last_id = str(max(int(m["sms_id"]) for m in received))
        if sent:
            last_sent_id = str(max(int(m["sms_id"]) for m in sent))
    raise BenchError("fetch never ran out of messages")


def bench_baseline(settings: WrkSettings, processes: Processes, tmp: Path) -> WrkResult:
    print("baseline: bench/baseline_app.py", flush=True)
    port = free_port()
    log = tmp / "baseline.log"
    server = processes.start("baseline", [sys.executable, str(BENCH / "baseline_app.py"),
                                          "--port", str(port)], log)
    url = f"http://{HOST}:{port}/"
    probe_body = {"username": "alice", "password": "pw1", "to": BOB[1], "body": "probe"}
    wait_until_answering(server, log, lambda: request(url, probe_body, timeout=1.0)[0] == 200)
    try:
        return measure(settings, "baseline", url, BENCH / "baseline.lua", server)
    finally:
        processes.stop(server)


def bench_adapter(settings: WrkSettings, processes: Processes, tmp: Path,
                  profile_dir: Path | None) -> dict[str, WrkResult]:
    port = free_port()
    config = write_config(tmp, port)
    print(f"adapter: accounts on {tmp}/adapter.sqlite3", flush=True)
    for username, number, password in (ALICE, BOB):
        adapter_cli(config, "account", "add", username, "--number", number,
                    "--password", password)
    log = tmp / "adapter.log"
    server = processes.start("adapter", [sys.executable, "-m", "adapter", "serve",
                                         "--port", str(port), "--config", str(config)], log)
    base = f"http://{HOST}:{port}"
    wait_until_answering(server, log,
                         lambda: request(f"{base}/healthz", timeout=1.0)[0] == 200)
    # Bob sends once so both of his fetch cursors are real ids; the first
    # requests also pay for each password's one argon2 verification.
    send(base, BOB, ALICE[1], "hello alice")
    send(base, ALICE, BOB[1], "hello bob")
    results = {}
    try:
        results["send"] = measure(settings, "send", f"{base}/acrobits/send",
                                  BENCH / "send.lua", server, profile_dir=profile_dir,
                                  processes=processes, log_dir=tmp)
        last_id, last_sent_id = fetch_newest(base, BOB)
        print(f"  bob's newest ids: received {last_id}, sent {last_sent_id}", flush=True)
        # The benchmark's own request must find nothing new.
        status, body = request(f"{base}/acrobits/fetch", {
            "username": BOB[0], "password": BOB[2], "last_id": last_id,
            "last_sent_id": last_sent_id, "device": DEVICE})
        answer = json.loads(body) if status == 200 else {}
        if answer.get("received_smss") != [] or answer.get("sent_smss") != []:
            raise BenchError(f"the fetch to benchmark is not empty: {status} {body[:300]!r}")
        results["fetch"] = measure(settings, "fetch", f"{base}/acrobits/fetch",
                                   BENCH / "fetch.lua", server, [last_id, last_sent_id],
                                   profile_dir=profile_dir, processes=processes, log_dir=tmp)
    finally:
        processes.stop(server)
    if server.returncode not in (0, -signal.SIGTERM):
        print(f"bench_core: the adapter exited with {server.returncode}:\n{tail(log)}",
              file=sys.stderr)
    return results


# -- report ------------------------------------------------------------------------


Round = dict[str, WrkResult]  # scenario name -> its figures, in one round


def ratios(results: Round) -> tuple[float, float]:
    base = results["baseline"].requests_per_second
    return (results["send"].requests_per_second / base,
            results["fetch"].requests_per_second / base)


def verdict(rounds: list[Round]) -> list[tuple[str, str, bool]]:
    """The targets, on the median over the rounds (one round's baseline can be
    thrown by a burst of other work on the machine)."""
    send_ratio = statistics.median(ratios(r)[0] for r in rounds)
    fetch_ratio = statistics.median(ratios(r)[1] for r in rounds)
    send_p99 = statistics.median(r["send"].p99_ms for r in rounds)
    bad = {name: sum(r[name].non_2xx + r[name].warmup_non_2xx + r[name].socket_errors
                     for r in rounds) for name in rounds[0]}
    return [
        (f"send req/s >= {SEND_RATIO_TARGET:.2f} x baseline", f"{send_ratio:.3f}",
         send_ratio >= SEND_RATIO_TARGET),
        (f"fetch req/s >= {FETCH_RATIO_TARGET:.2f} x baseline", f"{fetch_ratio:.3f}",
         fetch_ratio >= FETCH_RATIO_TARGET),
        (f"send p99 < {SEND_P99_TARGET_MS:.0f} ms", f"{send_p99:.2f} ms",
         send_p99 < SEND_P99_TARGET_MS),
        ("no non-2xx answers or socket errors",
         ", ".join(f"{name} {n}" for name, n in bad.items()), not any(bad.values())),
    ]


def report(rounds: list[Round], settings: WrkSettings, version: str) -> bool:
    print()
    print(f"adapter code: {version}")
    print(f"wrk: {settings.threads} threads, {settings.connections} connections, "
          f"{settings.duration}s each after {settings.warmup}s warm-up; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'round':<6} {'scenario':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'requests':>9} {'non-2xx':>8} {'sock err':>8} {'srv CPU':>8} {'wrk CPU':>8} "
          f"{'other':>6}")
    for number, results in enumerate(rounds, start=1):
        for name, r in results.items():
            print(f"{number:<6} {name:<10} {r.requests_per_second:>10.1f} {r.p50_ms:>8.2f} "
                  f"{r.p99_ms:>8.2f} {r.requests:>9} {r.non_2xx + r.warmup_non_2xx:>8} "
                  f"{r.socket_errors:>8} {r.server_cpu_percent:>7.0f}% "
                  f"{r.wrk_cpu_percent:>7.0f}% {r.other_cpu_percent:>5.0f}%")
    print("(CPU in % of one core during the measured run; 'other' is everything else on the "
          "machine, which skews the figures when high)")
    for number, results in enumerate(rounds, start=1):
        send_ratio, fetch_ratio = ratios(results)
        print(f"round {number} ratios: send/baseline {send_ratio:.3f}, "
              f"fetch/baseline {fetch_ratio:.3f}")
    print(f"targets (median of {len(rounds)} round{'s' if len(rounds) > 1 else ''}):")
    checks = verdict(rounds)
    for what, value, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what:<40} {value}")
    return all(ok for _what, _value, ok in checks)


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--timeout", type=int, default=5, help="wrk per-request timeout, s (5)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of all three scenarios; the targets use the medians (3)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="record the adapter with py-spy into DIR (collapsed stacks)")
    parser.add_argument("--py-spy-options", metavar="OPTIONS", default="",
                        help="more py-spy record options, e.g. '--gil' or '--native --idle'")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (database, server logs)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --connections and --threads must be positive")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench_core: wrk is not installed; install it with: apt-get install wrk",
              file=sys.stderr)
        return 2
    PY_SPY_OPTIONS[:] = shlex.split(args.py_spy_options)
    settings = WrkSettings(connections=args.connections, threads=args.threads,
                           duration=args.duration, warmup=args.warmup, timeout=args.timeout)

    # A SIGTERM (or SIGHUP) must still run the clean-up below.
    def terminated(signum, _frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)

    version = code_version()
    processes = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="adapter-bench-"))
    profile_dir = args.profile.resolve() if args.profile else None
    try:
        rounds = []
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}", flush=True)
            directory = tmp / f"round{number}"  # a fresh database each round
            directory.mkdir()
            results = {"baseline": bench_baseline(settings, processes, directory)}
            # Profiled once: py-spy slows the server it samples.
            results.update(bench_adapter(settings, processes, directory,
                                         profile_dir if number == 1 else None))
            rounds.append(results)
        passed = report(rounds, settings, version)
        if args.json:
            args.json.write_text(json.dumps({
                "settings": asdict(settings), "cpus": os.cpu_count(), "code": version,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "rounds": [{n: {k: round(v, 2) if isinstance(v, float) else v
                                for k, v in asdict(r).items() if k != "raw"}
                            for n, r in results.items()} for results in rounds],
                "checks": [{"target": w, "value": v, "pass": ok}
                           for w, v, ok in verdict(rounds)],
            }, indent=2) + "\n")
        if profile_dir:
            print(f"profiles: {profile_dir}/*.collapsed "
                  "(summarise with: python bench/profile_summary.py FILE)")
        return 0 if passed else 1
    except BenchError as exc:
        print(f"bench_core: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench_core: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"bench_core: terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        processes.stop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
