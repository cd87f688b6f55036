"""Helpers shared by the benchmark scripts in bench/ (not a script itself).

Processes that are stopped on the way out, wrk runs and their figures, CPU
accounting from /proc, the adapter's CLI, and small HTTP probes. Everything
talks to 127.0.0.1 only. The scripts import it as ``common`` (Python puts
the script's own directory, bench/, first on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"

ALICE = ("alice", "+12025550101", "pw1")
BOB = ("bob", "+12025550102", "pw2")

DEFAULT_POSTGRESQL_URL = "postgresql://adapter:adapter@127.0.0.1:5432/postgres"

START_TIMEOUT = 30.0  # seconds for a server to answer
COMMAND_TIMEOUT = 60.0  # seconds for one CLI command
STOP_TIMEOUT = 10.0  # seconds for a server to exit after SIGTERM


# Children import the adapter from the checkout this script lives in, whatever
# else is installed: the benchmark measures this tree.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def script_name() -> str:
    return Path(sys.argv[0]).stem or "bench"


class BenchError(Exception):
    """The benchmark cannot go on; reported as one line."""


class Terminated(Exception):
    """SIGTERM or SIGHUP: stop everything and exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def install_signal_handlers(max_seconds: float | None = None) -> None:
    """SIGTERM/SIGHUP raise :class:`Terminated`; with ``max_seconds``, an alarm
    raises :class:`BenchError` when the whole run takes longer. Either way the
    caller's ``finally`` still stops every process."""

    def terminated(signum, _frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    if max_seconds:
        def out_of_time(_signum, _frame):
            raise BenchError(f"the run took longer than its limit of {max_seconds:.0f} s")

        signal.signal(signal.SIGALRM, out_of_time)
        signal.setitimer(signal.ITIMER_REAL, max_seconds)


def cancel_time_limit() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


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
            except BaseException as exc:  # keep stopping the others
                print(f"{script_name()}: could not stop pid {proc.pid}: {exc!r}",
                      file=sys.stderr)


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


# -- CPU accounting --------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_or_none(pid: int) -> float | None:
    """:func:`cpu_seconds`, or None when the process is gone (or not readable)."""
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds() -> float:
    """CPU time all cores of the machine have spent busy so far (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of every child this process has waited for (wrk runs, CLI commands)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuWindow:
    """CPU used during a measured window, in % of one core, by named groups of
    processes, by this script's waited-for children (wrk), and by the machine.

    ``groups`` maps a name to a function returning the pids to count at that
    moment (called at the start and the end, so processes that appear during
    the window, like new database backends, are counted from zero). "other"
    is what the machine used beyond all of these: other people's work.
    """

    def __init__(self, groups: dict[str, callable]):
        self.groups = groups

    def __enter__(self) -> "CpuWindow":
        self._start = {name: self._sample(pids()) for name, pids in self.groups.items()}
        self._children = children_cpu_seconds()
        self._machine = machine_busy_seconds()
        self._started = time.monotonic()
        return self

    @staticmethod
    def _sample(pids) -> dict[int, float]:
        return {pid: cpu for pid in pids if (cpu := cpu_seconds_or_none(pid)) is not None}

    def __exit__(self, *exc) -> None:
        self.elapsed = time.monotonic() - self._started
        self.percent: dict[str, float] = {}
        for name, pids in self.groups.items():
            end = self._sample(pids())
            used = sum(cpu - self._start[name].get(pid, 0.0) for pid, cpu in end.items())
            self.percent[name] = 100.0 * used / self.elapsed
        self.percent["wrk"] = 100.0 * (children_cpu_seconds() - self._children) / self.elapsed
        machine = 100.0 * (machine_busy_seconds() - self._machine) / self.elapsed
        self.percent["other"] = max(0.0, machine - sum(self.percent.values()))


# -- wrk -------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    max_ms: float = 0.0
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
    latency_max = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.MULTILINE)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    return WrkResult(
        requests_per_second=rps, p50_ms=p50, p99_ms=p99, requests=requests,
        max_ms=_duration_ms(latency_max.group(1)) if latency_max else 0.0,
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


def require_wrk() -> None:
    import shutil

    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed; install it with: apt-get install wrk")


def run_wrk(settings: WrkSettings, url: str, script: Path, seconds: int,
            script_args: list[str], env: dict[str, str] | None = None) -> WrkResult:
    args = settings.command(url, script, seconds, script_args)
    try:
        done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                              timeout=seconds + settings.timeout + 30,
                              env=None if env is None else {**os.environ, **env})
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish in time: {' '.join(args)}") from None
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout)


# -- the adapter -------------------------------------------------------------------


def adapter_cli(config: Path, *args: str) -> str:
    """Run ``python -m adapter --config CONFIG ARGS...``; its standard output."""
    command = [sys.executable, "-m", "adapter", "--config", str(config), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, env=CHILD_ENV)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {' '.join(command)}") from None
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def start_serve(processes: Processes, config: Path, port: int, log: Path,
                name: str = "adapter") -> subprocess.Popen:
    """Start ``python -m adapter serve`` on ``port`` (see :func:`wait_healthy`)."""
    return processes.start(name, [sys.executable, "-m", "adapter", "serve",
                                  "--port", str(port), "--config", str(config)], log)


def wait_healthy(server: subprocess.Popen, port: int, log: Path) -> None:
    """Wait (with a deadline) until the adapter on ``port`` answers ``/healthz`` with 200."""
    wait_until_answering(server, log,
                         lambda: request(f"http://{HOST}:{port}/healthz", timeout=1.0)[0] == 200)


def start_adapter(processes: Processes, config: Path, port: int, log: Path,
                  name: str = "adapter") -> subprocess.Popen:
    """``python -m adapter serve`` on ``port``, once ``/healthz`` answers 200."""
    server = start_serve(processes, config, port, log, name)
    wait_healthy(server, port, log)
    return server


def send(base: str, sender: tuple[str, str, str], to: str, body: str) -> dict:
    status, answer = request(f"{base}/acrobits/send", {
        "username": sender[0], "password": sender[2], "to": to, "body": body,
    })
    if status != 200:
        raise BenchError(f"send from {sender[0]} answered {status}: {answer[:200]!r}")
    return json.loads(answer)


def machine_description() -> str:
    """CPU model and count, kernel: for the report."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Linux {os.uname().release}"


# -- PostgreSQL --------------------------------------------------------------------


class PostgreSQL:
    """The server named by an admin URL: creates and drops throwaway databases."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise BenchError(f"--postgresql-url must be postgresql://USER:PASSWORD@HOST:PORT/DB, "
                             f"got {url!r}")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise BenchError(f"--postgresql-url must be on this machine (127.0.0.1), "
                             f"not {parts.hostname}")
        self.url = url
        self._parts = parts
        self.created: set[str] = set()  # dropped again, also after an error
        try:
            import asyncpg  # noqa: F401  (the adapter's own PostgreSQL driver)
        except ImportError:
            raise BenchError("PostgreSQL scenarios need asyncpg (pip install asyncpg)") from None

    async def connect(self):
        """An asyncpg connection to the admin URL's database (the caller closes it)."""
        import asyncpg

        parts = self._parts
        return await asyncpg.connect(
            user=unquote(parts.username or ""), password=unquote(parts.password or ""),
            host=parts.hostname, port=parts.port or 5432,
            database=unquote(parts.path.lstrip("/")) or "postgres", timeout=10)

    async def _run(self, sql: str, *args):
        connection = await self.connect()
        try:
            return await connection.fetch(sql, *args, timeout=30)
        finally:
            await connection.close()

    def run(self, sql: str, *args):
        try:
            return asyncio.run(self._run(sql, *args))
        except (OSError, asyncio.TimeoutError) as exc:
            raise BenchError(f"cannot reach PostgreSQL at {self._parts.hostname}:"
                             f"{self._parts.port or 5432}: {exc} (start it with: "
                             "pg_ctlcluster 15 main start)") from None
        except Exception as exc:  # asyncpg's errors: report them on one line
            if type(exc).__module__.startswith("asyncpg"):
                raise BenchError(f"PostgreSQL: {type(exc).__name__}: {exc}") from None
            raise

    def create_database(self) -> tuple[str, str]:
        """A new empty database: (name, URL for the adapter)."""
        name = f"adapter_bench_{uuid.uuid4().hex[:12]}"
        self.run(f'CREATE DATABASE "{name}"')
        self.created.add(name)
        url = urlunsplit(self._parts._replace(path=f"/{name}"))
        return name, url

    def drop_database(self, name: str) -> None:
        self.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.discard(name)

    def drop_created(self) -> None:
        """Drop every database this object made and has not dropped yet (clean-up)."""
        for name in sorted(self.created):
            try:
                self.drop_database(name)
            except BenchError as exc:
                print(f"{script_name()}: could not drop database {name}: {exc}",
                      file=sys.stderr)

    def backend_pids(self, name: str) -> list[int]:
        rows = self.run("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
        return [row["pid"] for row in rows]

    def version(self) -> str:
        return self.run("SHOW server_version")[0][0]


def default_postgresql_url() -> str:
    return os.environ.get("ADAPTER_BENCH_POSTGRESQL_URL") or DEFAULT_POSTGRESQL_URL
