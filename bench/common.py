"""The harness every benchmark in bench/ uses (not a script itself).

A run's temporary directory, processes and databases, all cleaned up on the
way out; the adapter (``python -m adapter`` serve and CLI) on a fresh
database; the tests' fake carriers and push service served over HTTP in a
thread of the benchmark's process; wrk runs; CPU accounting from /proc.
Everything talks to 127.0.0.1 only. The scripts import it as ``common``.
"""

import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"
sys.path.insert(1, str(ROOT))  # this checkout's adapter and tests/, whatever else is installed
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
ALICE = ("alice", "+12025550101", "pw1")
BOB = ("bob", "+12025550102", "pw2")
POSTGRESQL_URL = os.environ.get("ADAPTER_TEST_POSTGRESQL_URL")  # the tests' admin URL


class BenchError(Exception):
    """The benchmark cannot go on; reported as one line, exit status 2."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def wait_for(condition, what: str, seconds: float = 30.0, proc=None, log: Path | None = None):
    """Poll ``condition()`` until it returns something true, with a deadline."""
    deadline = time.monotonic() + seconds
    while True:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: the process exited ({proc.returncode}):\n{tail(log)}")
        with contextlib.suppress(OSError):
            if result := condition():
                return result
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {seconds:.0f} s\n{tail(log) if log else ''}")
        time.sleep(0.05)


def request(url: str, body: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET, or a JSON POST of ``body``: (status, answer)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def send(base: str, user: tuple[str, str, str], to: str, body: str) -> dict:
    status, answer = request(f"{base}/acrobits/send",
                             {"username": user[0], "password": user[2], "to": to, "body": body})
    if status != 200:
        raise BenchError(f"send from {user[0]} answered {status}: {answer[:200]!r}")
    return json.loads(answer)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def describe() -> str:
    """The code measured and the machine, for the report."""
    commit, dirty = (subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                                    text=True).stdout.strip()
                     for args in (["describe", "--always"], ["status", "--porcelain", "adapter"]))
    return f"code {commit}{'+dirty' if dirty else ''} (adapter/); {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}"


def table(headers: list[str], rows: list[list]) -> None:
    """A markdown table, as RESULTS.md shows it."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(("PASS" if v else "FAIL") if isinstance(v, bool) else
                                f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of some latencies."""
    q = statistics.quantiles(values, n=100) if len(values) > 1 else [max(values, default=0)] * 99
    return q[49], q[98], max(values, default=0)



class Bench:
    """Everything one benchmark run made, undone by :func:`main` on the way out."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.tmp = Path(tempfile.mkdtemp(prefix="adapter-bench-"))
        self.stack.callback(shutil.rmtree, self.tmp, ignore_errors=True)

    def start(self, args: list[str], log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=ROOT, env=CHILD_ENV)
        self.stack.callback(stop, proc)
        return proc

    def serve(self, app) -> str:
        """Serve an ASGI app (a test fake) in a thread, as the tests do; its base URL."""
        from tests.conftest import serving

        return self.stack.enter_context(serving(app))

    def database(self, name: str, postgresql_url: str | None = None) -> str:
        """A fresh database: a SQLite file, or one created (and later dropped) on
        the PostgreSQL server of the admin URL ``postgresql_url``."""
        (self.tmp / name).mkdir(exist_ok=True)
        if not postgresql_url:
            return f"sqlite:///{self.tmp / name}/adapter.sqlite3"
        database = f"adapter_bench_{uuid.uuid4().hex[:12]}"
        postgresql(postgresql_url, f'CREATE DATABASE "{database}"')
        self.stack.callback(postgresql, postgresql_url,
                            f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        return urlunsplit(urlsplit(postgresql_url)._replace(path=f"/{database}"))

    def adapter(self, name: str, database_url: str, toml: str = "") -> "Adapter":
        return Adapter(self, self.tmp / name, database_url, toml)


def main(run) -> int:
    """Run ``run(bench)`` (True: every check passed); exit 0, 1 a check failed,
    2 it could not run. SIGTERM, Ctrl-C and errors still clean up."""
    name = Path(sys.argv[0]).stem
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    bench = Bench()
    try:
        with bench.stack:
            print(describe(), flush=True)
            return 0 if run(bench) else 1
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


def postgresql(url: str, sql: str, *args) -> list:
    """One statement on the database of ``url`` (asyncpg, the adapter's driver)."""
    import asyncpg

    async def run() -> list:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return await connection.fetch(sql, *args, timeout=60)
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except (OSError, asyncio.TimeoutError) as exc:
        raise BenchError(f"cannot reach PostgreSQL: {exc}") from None


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to this database."""
    name = urlsplit(database_url).path.lstrip("/")
    rows = postgresql(database_url, "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                      "AND pid <> pg_backend_pid()", name)
    return [row["pid"] for row in rows]


class Adapter:
    """A config file on one database, its CLI, and its ``serve`` processes."""

    def __init__(self, bench: Bench, directory: Path, database_url: str, toml: str):
        directory.mkdir(exist_ok=True)
        self.bench, self.directory, self.database_url = bench, directory, database_url
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.config = directory / "adapter.toml"
        self.config.write_text(f"database_url = {json.dumps(database_url)}\n"
                               f'public_url = "{self.base}"\n{toml}')
        self.servers: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "adapter", "--config", str(self.config), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=CHILD_ENV,
                              stdin=subprocess.DEVNULL, timeout=120)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(args[:3])} failed: {(done.stderr or done.stdout)[-500:]}")
        return done.stdout

    def add(self, user: tuple[str, str, str], *options: str) -> None:
        self.cli("account", "add", user[0], "--number", user[1], "--password", user[2],
                 *options)

    def serve(self, port: int | None = None, wait: bool = True) -> subprocess.Popen:
        """``python -m adapter serve`` (on the config's port unless told), once
        ``/healthz`` answers 200 unless ``wait`` is false."""
        port = port or self.port
        log = self.directory / f"serve-{port}.log"
        server = self.bench.start([sys.executable, "-m", "adapter", "--config", str(self.config),
                                   "serve", "--port", str(port)], log)
        self.servers.append(server)
        self.logs.append(log)
        if wait:
            wait_for(lambda: request(f"http://{HOST}:{port}/healthz", timeout=1)[0] == 200,
                     f"serve on port {port}", proc=server, log=log)
        return server

    def pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    def check_alive(self) -> None:
        for server, log in zip(self.servers, self.logs):
            if server.poll() is not None:
                raise BenchError(f"serve exited ({server.returncode}):\n{tail(log)}")

    def stop(self) -> None:
        for server in self.servers:
            stop(server)



def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (all threads) so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def children_cpu_seconds() -> float:  # of the children waited for: wrk runs
    return sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])


class CpuWindow:
    """CPU used during a window, in % of one core: by named groups of processes
    (``groups`` maps a name to a function giving their pids, asked at both ends),
    by this script's waited-for children ("load": wrk or a load generator), and
    "other": the rest of the machine, other people's work, which skews figures."""

    def __init__(self, **groups):
        self.groups = groups

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu for pid in pids() if (cpu := cpu_seconds(pid)) is not None}
                for name, pids in self.groups.items()}

    def __enter__(self) -> "CpuWindow":
        self._start, self._started = self._sample(), time.monotonic()
        self._children, self._machine = children_cpu_seconds(), machine_busy_seconds()
        return self

    def __exit__(self, *exc) -> None:
        end, self.elapsed = self._sample(), time.monotonic() - self._started
        self.percent = {name: 100 * sum(cpu - self._start[name].get(pid, 0.0)
                                        for pid, cpu in used.items()) / self.elapsed
                        for name, used in end.items()}
        self.percent["load"] = 100 * (children_cpu_seconds() - self._children) / self.elapsed
        machine = 100 * (machine_busy_seconds() - self._machine) / self.elapsed
        self.percent["other"] = max(0.0, machine - sum(self.percent.values()))



@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    bad: int  # non-2xx answers and socket errors, the warm-up's included
    raw: str = ""
    cpu: dict[str, float] = field(default_factory=dict)


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str) -> str:
        if match := re.search(pattern, output, re.MULTILINE):
            return match.group(1)
        raise BenchError(f"wrk's output has no {pattern!r}:\n{output}")

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(
        rps=float(find(r"^Requests/sec:\s+([\d.]+)")), p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")), max_ms=_ms(find(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)")),
        requests=int(find(r"^\s+(\d+) requests in ")),
        bad=(int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, errors.groups())) if errors else 0), raw=output)


@dataclass
class Wrk:
    """How wrk is run: ``--connections``, ``--threads``, seconds measured after a warm-up."""

    connections: int = 16
    threads: int = 2
    duration: int = 10
    warmup: int = 2

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--duration", type=int, default=10, help="seconds measured (10)")
        parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up (2)")
        parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")

    @classmethod
    def from_args(cls, args) -> "Wrk":
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed: apt-get install wrk")
        return cls(args.connections, min(2, args.connections), args.duration, args.warmup)

    def run(self, url: str, script: str, args=(), seconds: int | None = None,
            env: dict | None = None) -> WrkResult:
        seconds = seconds or self.duration
        command = ["wrk", f"--threads={self.threads}", f"--connections={self.connections}",
                   f"--duration={seconds}s", "--timeout=5s", "--latency",
                   f"--script={BENCH / script}", url, *(["--", *args] if args else [])]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              timeout=seconds + 60, env={**os.environ, **(env or {})})
        if done.returncode != 0:
            raise BenchError(f"wrk failed: {done.stderr.strip() or done.stdout}")
        return parse_wrk(done.stdout)

    def measure(self, url: str, script: str, args=(), env: dict | None = None,
                **groups) -> WrkResult:
        """A warm-up run (figures discarded but for bad answers), then the measured
        run with the CPU of ``groups`` (see :class:`CpuWindow`)."""
        warmup = self.run(url, script, args, self.warmup, env) if self.warmup else None
        with CpuWindow(**groups) as cpu:
            result = self.run(url, script, args, env=env)
        result.cpu = cpu.percent
        result.bad += warmup.bad if warmup else 0
        return result
