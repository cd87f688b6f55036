#!/usr/bin/env python3
"""Latency from an inbound carrier callback to the push it causes.

    python bench/bench_push.py [--rates 100,200,400,0] [--duration 10] [--warmup 2]
                               [--accounts 100] [--json bench/out/push.json]

Run from the project root with the project installed (the venv active).
Everything runs on 127.0.0.1 in a temporary directory:

1. A fake Acrobits push service (this script with ``--serve-push``, its own
   process) that answers ``{"status": 200}`` at once and notes when each
   push arrived (``time.monotonic()``, the same clock in every process).
2. ``python -m adapter serve`` on a fresh SQLite file with a voip.ms
   provider, ``--accounts`` accounts made with the real CLI, each with one
   device whose token it reports through the Push Token Reporter.
3. For each rate (callbacks per second; 0 = as fast as ``--concurrency``
   callers go), the voip.ms "SMS URL Callback" by GET, as the fake carrier's
   ``deliver`` sends it (tests/providers/fake_voipms.py): the template
   ``provider urls`` prints, placeholders URL-encoded. Every callback names
   a new message id and a text with a sequence number, which the push's
   ``Message`` carries back.

Latency is the push's arrival minus the moment the callback was accepted
(its "ok" answer read by the caller); "from sent" counts from the moment
the callback was sent. Only callbacks sent after the warm-up count. Every
accepted callback must cause a push ("missing" otherwise): its own, or one
naming a later message to the same device (a device's waiting push carries
the newest message instead, see README "Push notifications"). The adapter runs
with ``[push] min_interval_seconds = 0``: the pipeline is measured, not the
spacing of one device's pushes.

Exit status: 0 done, 1 a push was missing or a callback refused, 2 the
benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"
PUSH_PATH = "/pnm2/send"
PROVIDER = "vms"
REMOTE_DID = "3125550188"
START_TIMEOUT = 30.0
# Children import the adapter from this checkout, whatever else is installed.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


class BenchError(Exception):
    """The benchmark cannot go on; reported as one line."""


# -- the fake push service (its own process) -------------------------------------------


def serve_push(port: int) -> None:
    """A minimal push service: POST JSON -> {"status": 200}; GET /arrivals."""
    import uvicorn

    arrivals: dict[str, float] = {}  # the pushed Message -> arrival time
    refused = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/arrivals":
            answer, status = json.dumps({"arrivals": arrivals, "refused": refused}).encode(), 200
        elif scope["method"] == "POST" and scope["path"] == PUSH_PATH:
            now = time.monotonic()
            try:
                push = json.loads(body)
                arrivals.setdefault(push["Message"], now)
                answer, status = b'{"status": 200, "response": "OK"}', 200
            except (ValueError, KeyError, TypeError):
                refused.append(body[:200].decode(errors="replace"))
                answer, status = b"Bad Request", 400
        else:
            answer, status = b"Bad Request", 400
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# -- processes and setup -----------------------------------------------------------------


class Processes:
    """Every process this script starts, stopped on the way out."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=ROOT, env=CHILD_ENV)
        self.running.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.running):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http(url: str, body: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(proc: subprocess.Popen, log: Path, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{' '.join(proc.args[:4])} exited: {log.read_text()[-2000:]}")
        try:
            if http(url, timeout=1.0)[0] < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{url} did not answer within {START_TIMEOUT:.0f}s")
        time.sleep(0.05)


def did(n: int) -> str:
    """Account n's number as voip.ms writes it (10 digits); n < 100."""
    return f"2025550{100 + n:03d}"


def set_up(tmp: Path, processes: Processes, accounts: int) -> tuple:
    """Start the push service and the adapter; returns (push URL, inbound template,
    server, push service)."""
    push_port, port = free_port(), free_port()
    push = processes.start([sys.executable, str(Path(__file__).resolve()), "--serve-push",
                            str(push_port)], tmp / "push.log")
    config = tmp / "adapter.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp}/adapter.sqlite3"\npublic_url = "http://{HOST}:{port}"\n'
        f'[push]\nurl = "http://{HOST}:{push_port}{PUSH_PATH}"\nmin_interval_seconds = 0\n'
        # The carrier API is never called: only inbound messages are measured.
        f'[providers.{PROVIDER}]\ntype = "voipms"\napi_username = "bench"\n'
        f'api_password = "bench"\nbase_url = "http://{HOST}:9/api/v1"\n')
    # One interpreter adds every account through the CLI's own entry point.
    adds = [["--config", str(config), "account", "add", f"user{n}", "--number", "+1" + did(n),
             "--provider", PROVIDER, "--password", f"pw{n}"] for n in range(accounts)]
    script = ("import json, sys\nfrom adapter import cli\n"
              "sys.exit(max(cli.main(a) for a in json.loads(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(adds)], cwd=ROOT,
                          env=CHILD_ENV, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"account add failed: {done.stderr.strip()[-500:]}")
    urls = subprocess.run([sys.executable, "-m", "adapter", "--config", str(config), "provider",
                           "urls", PROVIDER], cwd=ROOT, env=CHILD_ENV, capture_output=True,
                          text=True, timeout=60)
    template = dict(line.split(" ", 1) for line in urls.stdout.splitlines()).get("inbound")
    if urls.returncode != 0 or not template:
        raise BenchError(f"provider urls failed: {urls.stderr.strip()}")
    server = processes.start([sys.executable, "-m", "adapter", "--config", str(config), "serve",
                              "--port", str(port)], tmp / "adapter.log")
    wait_until(push, tmp / "push.log", f"http://{HOST}:{push_port}/arrivals")
    wait_until(server, tmp / "adapter.log", f"http://{HOST}:{port}/healthz")
    for n in range(accounts):
        status, body = http(f"http://{HOST}:{port}/acrobits/push-token", {
            "username": f"user{n}", "password": f"pw{n}", "selector": f"BENCH{n:04d}:00000000",
            "pushTokenOther": f"token-{n}", "pushappid_other": "bench.app", "device": f"d{n}"})
        if status != 200:
            raise BenchError(f"push token report answered {status}: {body[:200]!r}")
    return f"http://{HOST}:{push_port}", template, server, push


# -- load ------------------------------------------------------------------------------------


def callback_url(template: str, seq: int, accounts: int) -> str:
    """What voip.ms calls: the template with its placeholders URL-encoded."""
    values = {"ID": f"bench-{seq}", "TIMESTAMP": "2026-01-02 03:04:05", "FROM": REMOTE_DID,
              "TO": did(seq % accounts), "MESSAGE": f"bench {seq}"}
    for name, value in values.items():
        template = template.replace("{" + name + "}", quote(value, safe=""))
    return template


async def load(template: str, accounts: int, rate: float, seconds: float, concurrency: int,
               first_seq: int) -> dict[int, tuple[float, float]]:
    """Callbacks for ``seconds``: ``rate`` per second (0: back to back on
    ``concurrency`` connections). Returns seq -> (sent, accepted)."""
    import httpx2

    timings: dict[int, tuple[float, float]] = {}
    failures: list[str] = []
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes
    # them under a request (a reset the caller would see as a failure).
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                           keepalive_expiry=2.0)
    async with httpx2.AsyncClient(limits=limits, timeout=30.0) as client:
        gate = asyncio.Semaphore(concurrency)
        seq = first_seq
        start = time.monotonic()

        async def one(n: int) -> None:
            async with gate:
                for attempt in range(3):
                    sent = time.monotonic()
                    try:
                        response = await client.get(callback_url(template, n, accounts),
                                                    headers={"User-Agent": "voip.ms"})
                        break
                    except httpx2.TransportError as error:
                        # A carrier calls again too; the repeat is deduplicated
                        # by its message id. Timed from the attempt that worked.
                        if attempt == 2:
                            failures.append(f"{error.__class__.__name__}: {error}")
                            return
                accepted = time.monotonic()
            if response.status_code == 200 and response.text == "ok":
                timings[n] = (sent, accepted)
            else:
                failures.append(f"{response.status_code} {response.text[:100]}")

        if rate > 0:
            tasks = []
            while (now := time.monotonic()) - start < seconds:
                due = start + (seq - first_seq) / rate
                if due > now:
                    await asyncio.sleep(due - now)
                tasks.append(asyncio.create_task(one(seq)))
                seq += 1
            await asyncio.gather(*tasks)
        else:
            async def caller() -> None:
                nonlocal seq
                while time.monotonic() - start < seconds:
                    seq += 1
                    await one(seq)

            await asyncio.gather(*(caller() for _ in range(concurrency)))
    if failures:
        raise BenchError(f"{len(failures)} callbacks refused, e.g. {failures[0]}")
    return timings


def arrivals(push_url: str) -> dict[int, float]:
    status, body = http(f"{push_url}/arrivals", timeout=30)
    data = json.loads(body)
    if data["refused"]:
        raise BenchError(f"the push service refused {data['refused'][:3]}")
    return {int(text.split()[1]): at for text, at in data["arrivals"].items()}


def covered(arrived: dict[int, float], seqs, accounts: int) -> dict[int, float]:
    """seq -> when a push for it arrived: its own, or the first one for a later
    message to the same device (callbacks go to device ``seq % accounts``)."""
    result: dict[int, float] = {}
    earliest: dict[int, float] = {}  # device -> first arrival of a push for seq or later
    for seq in sorted(set(arrived) | set(seqs), reverse=True):
        device = seq % accounts
        if seq in arrived:
            earliest[device] = min(arrived[seq], earliest.get(device, arrived[seq]))
        if device in earliest:
            result[seq] = earliest[device]
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server: subprocess.Popen, push: subprocess.Popen) -> tuple[float, ...]:
    """Server, push service + this script (the load), whole machine."""
    return (cpu_seconds(server.pid), cpu_seconds(push.pid) + cpu_seconds(os.getpid()),
            machine_busy_seconds())


def run_rate(args, push_url: str, template: str, server: subprocess.Popen,
             push: subprocess.Popen, rate: float, first_seq: int) -> tuple[dict, int]:
    label = f"{rate:g}/s" if rate else f"max ({args.concurrency} callers)"
    print(f"  {label}: warm-up {args.warmup}s, then {args.duration}s ...", flush=True)
    warm = asyncio.run(load(template, args.accounts, rate, args.warmup, args.concurrency,
                            first_seq))
    first = max(warm, default=first_seq) + 1
    before, started = cpu_snapshot(server, push), time.monotonic()
    timings = asyncio.run(load(template, args.accounts, rate, args.duration, args.concurrency,
                               first))
    elapsed = time.monotonic() - started
    used = [100 * (b - a) / elapsed for a, b in zip(before, cpu_snapshot(server, push))]
    cpu, harness, other = used[0], used[1], max(0.0, used[2] - used[0] - used[1])
    deadline = time.monotonic() + 60
    while True:  # every push of this run, however late
        arrived = covered(arrivals(push_url), timings, args.accounts)
        missing = [seq for seq in timings if seq not in arrived]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    from_accepted = [(arrived[s] - acc) * 1000 for s, (_, acc) in timings.items() if s in arrived]
    from_sent = [(arrived[s] - sent) * 1000 for s, (sent, _) in timings.items() if s in arrived]
    acks = [(acc - sent) * 1000 for sent, acc in timings.values()]
    result = {
        "rate": label, "callbacks": len(timings), "callbacks_per_s": len(timings) / elapsed,
        "ack_p50_ms": statistics.median(acks), "ack_p99_ms": percentile(acks, 99),
        "push_p50_ms": statistics.median(from_accepted),
        "push_p99_ms": percentile(from_accepted, 99), "push_max_ms": max(from_accepted),
        "push_min_ms": min(from_accepted),
        "sent_p50_ms": statistics.median(from_sent), "sent_p99_ms": percentile(from_sent, 99),
        "missing": len(missing), "server_cpu_percent": cpu,
        "harness_cpu_percent": harness, "other_cpu_percent": other,
    }
    return result, max(timings, default=first) + 1


def report(results: list[dict]) -> None:
    print(f"\n{'load':<16} {'cb/s':>7} {'ack p50':>8} {'ack p99':>8} {'push p50':>9} "
          f"{'push p99':>9} {'push max':>9} {'sent p50':>9} {'sent p99':>9} {'missing':>8} "
          f"{'srv CPU':>8} {'load CPU':>8} {'other':>6}")
    for r in results:
        print(f"{r['rate']:<16} {r['callbacks_per_s']:>7.0f} {r['ack_p50_ms']:>8.2f} "
              f"{r['ack_p99_ms']:>8.2f} {r['push_p50_ms']:>9.2f} {r['push_p99_ms']:>9.2f} "
              f"{r['push_max_ms']:>9.2f} {r['sent_p50_ms']:>9.2f} {r['sent_p99_ms']:>9.2f} "
              f"{r['missing']:>8} {r['server_cpu_percent']:>7.0f}% "
              f"{r['harness_cpu_percent']:>7.0f}% {r['other_cpu_percent']:>5.0f}%")
    print("(ms; push = from the callback's 'ok' to the push's arrival; sent = from sending the "
          "callback; CPU in % of one core: the adapter, the load generator and fake push "
          "service, everything else on the machine)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,400,0",
                        help="callbacks per second, comma-separated; 0 = as fast as possible")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up (2)")
    parser.add_argument("--accounts", type=int, default=100, help="accounts, one device each (100)")
    parser.add_argument("--concurrency", type=int, default=16, help="open callbacks at most (16)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve-push", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.accounts <= 100:
        parser.error("--accounts must be 1-100")
    if args.serve_push:
        serve_push(args.serve_push)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    processes = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="adapter-bench-push-"))
    try:
        push_url, template, server, push = set_up(tmp, processes, args.accounts)
        print(f"adapter and push service up ({args.accounts} accounts, one device each)")
        results, seq = [], 0
        for rate in (float(r) for r in args.rates.split(",")):
            result, seq = run_rate(args, push_url, template, server, push, rate, seq)
            results.append(result)
        report(results)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)},
                                             "results": results}, indent=2, default=str) + "\n")
        return 1 if any(r["missing"] for r in results) else 0
    except BenchError as exc:
        print(f"bench_push: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        processes.stop_all()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    sys.exit(main())
