#!/usr/bin/env python3
"""Load benchmark of the adapter's two hot paths against a bare Starlette app.

    python bench/bench_core.py [--duration 10] [--warmup 2] [--json bench/out/run.json]
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
whose figures are discarded. The table shows requests/s, p50, p99, non-2xx
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
import re
import resource
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"

# Targets (the issue): the adapter's share of the bare framework's throughput.
SEND_RATIO_TARGET = 0.25
FETCH_RATIO_TARGET = 0.40
SEND_P99_TARGET_MS = 25.0

ALICE = ("alice", "+12025550101", "pw1")
BOB = ("bob", "+12025550102", "pw2")
DEVICE = "bench"

START_TIMEOUT = 30.0  # seconds for a server to answer
COMMAND_TIMEOUT = 60.0  # seconds for one CLI command
STOP_TIMEOUT = 10.0  # seconds for a server to exit after SIGTERM


# Children import the adapter from the checkout this script lives in, whatever
# else is installed: the benchmark measures this tree.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


class BenchError(Exception):
    """The benchmark cannot go on; reported as one line."""


class Terminated(Exception):
    """SIGTERM or SIGHUP: stop everything and exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# -- processes -------------------------------------------------------------------


class Processes:
    """Every long-running process this script starts, stopped on the way out."""

    def __init__(self) -> None:
        self._running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=ROOT, env=CHILD_ENV, **kwargs)
        self._running.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        self._running = [(n, p) for n, p in self._running if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self._running)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                print(f"bench_core: could not stop pid {proc.pid}: {exc}", file=sys.stderr)


def code_version() -> str:
    """The commit of the checkout being measured, '+dirty' with uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "adapter"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def request(url: str, body: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """One HTTP request: GET, or a JSON POST when ``body`` is given."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_answering(proc: subprocess.Popen, log: Path, probe) -> None:
    """Poll ``probe()`` (True once the server answers as expected) until a deadline."""
    deadline = time.monotonic() + START_TIMEOUT
    last_problem = "no answer yet"
    while True:
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode} while starting:\n"
                             f"{tail(log)}")
        try:
            if probe():
                return
            last_problem = "unexpected answer"
        except (OSError, urllib.error.URLError) as exc:
            last_problem = str(exc)
        if time.monotonic() > deadline:
            raise BenchError(f"server did not answer within {START_TIMEOUT:.0f}s "
                             f"({last_problem}); log:\n{tail(log)}")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores of the machine have spent busy so far (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- wrk -------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    # CPU use during the measured run, in % of one core: the server, wrk,
    # and everything else on the machine (other work skews the figures).
    server_cpu_percent: float = 0.0
    wrk_cpu_percent: float = 0.0
    other_cpu_percent: float = 0.0
    warmup_non_2xx: int = 0
    raw: str = field(default="", repr=False)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchError(f"cannot read wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The figures of wrk's ``--latency`` report."""

    def find(pattern: str, what: str) -> re.Match:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise BenchError(f"wrk output has no {what}:\n{output}")
        return match

    rps = float(find(r"^Requests/sec:\s+([\d.]+)", "Requests/sec").group(1))
    p50 = _duration_ms(find(r"^\s+50%\s+(\S+)", "50% latency (was --latency given?)").group(1))
    p99 = _duration_ms(find(r"^\s+99%\s+(\S+)", "99% latency").group(1))
    requests = int(find(r"^\s+(\d+) requests in ", "request count").group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    return WrkResult(
        requests_per_second=rps, p50_ms=p50, p99_ms=p99, requests=requests,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
        raw=output,
    )


@dataclass
class WrkSettings:
    connections: int
    threads: int
    duration: int
    warmup: int
    timeout: int

    def command(self, url: str, script: Path, seconds: int, script_args: list[str]) -> list[str]:
        args = ["wrk", f"--threads={self.threads}", f"--connections={self.connections}",
                f"--duration={seconds}s", f"--timeout={self.timeout}s", "--latency",
                f"--script={script}", url]
        return args + (["--", *script_args] if script_args else [])


def run_wrk(settings: WrkSettings, url: str, script: Path, seconds: int,
            script_args: list[str]) -> WrkResult:
    args = settings.command(url, script, seconds, script_args)
    try:
        done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                              timeout=seconds + settings.timeout + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish in time: {' '.join(args)}") from None
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout)


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


def adapter_cli(config: Path, *args: str) -> None:
    command = [sys.executable, "-m", "adapter", "--config", str(config), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, env=CHILD_ENV)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {' '.join(command)}") from None
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")


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


def send(base: str, sender: tuple[str, str, str], to: str, body: str) -> None:
    status, answer = request(f"{base}/acrobits/send", {
        "username": sender[0], "password": sender[2], "to": to, "body": body,
    })
    if status != 200:
        raise BenchError(f"send from {sender[0]} answered {status}: {answer[:200]!r}")


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


def verdict(results: dict[str, WrkResult]) -> list[tuple[str, str, bool]]:
    base = results["baseline"].requests_per_second
    send_ratio = results["send"].requests_per_second / base
    fetch_ratio = results["fetch"].requests_per_second / base
    bad = {name: r.non_2xx + r.warmup_non_2xx + r.socket_errors for name, r in results.items()}
    return [
        (f"send req/s >= {SEND_RATIO_TARGET:.2f} x baseline", f"{send_ratio:.3f}",
         send_ratio >= SEND_RATIO_TARGET),
        (f"fetch req/s >= {FETCH_RATIO_TARGET:.2f} x baseline", f"{fetch_ratio:.3f}",
         fetch_ratio >= FETCH_RATIO_TARGET),
        (f"send p99 < {SEND_P99_TARGET_MS:.0f} ms", f"{results['send'].p99_ms:.2f} ms",
         results["send"].p99_ms < SEND_P99_TARGET_MS),
        ("no non-2xx answers or socket errors",
         ", ".join(f"{name} {n}" for name, n in bad.items()), not any(bad.values())),
    ]


def report(results: dict[str, WrkResult], settings: WrkSettings, version: str) -> bool:
    print()
    print(f"adapter code: {version}")
    print(f"wrk: {settings.threads} threads, {settings.connections} connections, "
          f"{settings.duration}s each after {settings.warmup}s warm-up; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'scenario':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
          f"{'non-2xx':>8} {'sock err':>8} {'srv CPU':>8} {'wrk CPU':>8} {'other':>6}")
    for name, r in results.items():
        print(f"{name:<10} {r.requests_per_second:>10.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.requests:>9} {r.non_2xx + r.warmup_non_2xx:>8} {r.socket_errors:>8} "
              f"{r.server_cpu_percent:>7.0f}% {r.wrk_cpu_percent:>7.0f}% "
              f"{r.other_cpu_percent:>5.0f}%")
    print("(CPU in % of one core during the measured run; 'other' is everything else on the "
          "machine, which skews the figures when high)")
    base = results["baseline"].requests_per_second
    print(f"ratios: send/baseline {results['send'].requests_per_second / base:.3f}, "
          f"fetch/baseline {results['fetch'].requests_per_second / base:.3f}")
    print("targets:")
    checks = verdict(results)
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
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="record the adapter with py-spy into DIR (collapsed stacks)")
    parser.add_argument("--py-spy-options", metavar="OPTIONS", default="",
                        help="more py-spy record options, e.g. '--gil' or '--native --idle'")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (database, server logs)")
    args = parser.parse_args(argv)
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
        results = {"baseline": bench_baseline(settings, processes, tmp)}
        results.update(bench_adapter(settings, processes, tmp, profile_dir))
        passed = report(results, settings, version)
        if args.json:
            args.json.write_text(json.dumps({
                "settings": asdict(settings), "cpus": os.cpu_count(), "code": version,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "results": {n: {k: round(v, 2) if isinstance(v, float) else v
                                for k, v in asdict(r).items() if k != "raw"}
                            for n, r in results.items()},
                "checks": [{"target": w, "value": v, "pass": ok}
                           for w, v, ok in verdict(results)],
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
