#!/usr/bin/env python3
"""Latency from an inbound carrier callback to the push it causes.

    python bench/bench_push.py [--rates 100,200,400,0] [--duration 10] [--warmup 2]
                               [--accounts 100] [--concurrency 16]

The push service is the tests' fake (tests/push/fake_push.py), served in this
process; the callbacks come from a process of their own. What is measured:
bench/RESULTS.md.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from urllib.parse import quote

from common import (CHILD_ENV, ROOT, BenchError, CpuWindow, main, percentiles, request, stop,
                    table)
from tests.push.fake_push import PATH, FakePushService

PROVIDER = "vms"


def did(n: int) -> str:
    return f"2025550{100 + n:03d}"  # account n's number as voip.ms writes it


async def load(template: str, accounts: int, rate: float, seconds: float, concurrency: int,
               first: int) -> dict:
    """Callbacks for ``seconds``: seq -> (sent, accepted), the failures, the next seq."""
    import httpx2

    timings, failures, seq = {}, [], first
    limits = httpx2.Limits(max_connections=concurrency, keepalive_expiry=2.0)
    async with httpx2.AsyncClient(limits=limits, timeout=30.0) as client:
        gate, start = asyncio.Semaphore(concurrency), time.monotonic()

        async def one(n: int) -> None:
            url = template
            for name, value in {"ID": f"bench-{n}", "TIMESTAMP": "2026-01-02 03:04:05",
                                "FROM": "3125550188", "TO": did(n % accounts),
                                "MESSAGE": f"bench {n}"}.items():
                url = url.replace("{" + name + "}", quote(value, safe=""))
            async with gate:
                sent = time.monotonic()
                try:
                    answer = await client.get(url, headers={"User-Agent": "voip.ms"})
                except httpx2.TransportError as error:
                    failures.append(repr(error))
                    return
                if answer.status_code == 200 and answer.text == "ok":
                    timings[n] = (sent, time.monotonic())
                else:
                    failures.append(f"{answer.status_code} {answer.text[:100]}")

        if rate > 0:
            tasks = []
            while (now := time.monotonic()) - start < seconds:
                await asyncio.sleep(max(0.0, start + (seq - first) / rate - now))
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
    return {"timings": timings, "failures": failures, "next": seq + 1,
            "seconds": time.monotonic() - start}


def callbacks(generator: subprocess.Popen, *params) -> dict:
    """One :func:`load` run by the load generator, a process of its own."""
    generator.stdin.write(json.dumps(params) + "\n")
    generator.stdin.flush()
    if not (line := generator.stdout.readline()):
        raise BenchError("the load generator exited")
    if (result := json.loads(line))["failures"]:
        raise BenchError(f"{len(result['failures'])} callbacks failed: {result['failures'][0]}")
    result["timings"] = {int(seq): times for seq, times in result["timings"].items()}
    return result


def arrivals(service: FakePushService, seqs, accounts: int) -> dict[int, float]:
    """seq -> when a push for it arrived: its own, or the first for a later
    message to the same device (callbacks go to device seq % accounts)."""
    arrived: dict[int, float] = {}
    for push, at in zip(list(service.requests), list(service.arrived_at)):
        seq = int(push["Message"].split()[1])
        arrived[seq] = min(at, arrived.get(seq, at))
    found, earliest = {}, {}
    for seq in sorted(set(arrived) | set(seqs), reverse=True):
        if seq in arrived:
            earliest[seq % accounts] = min(arrived[seq], earliest.get(seq % accounts, 1e18))
        if seq % accounts in earliest:
            found[seq] = earliest[seq % accounts]
    return found


def run(bench, args) -> bool:
    service = FakePushService()
    push_url = bench.serve(service.app) + PATH
    adapter = bench.adapter("push", bench.database("push"), (
        f'[push]\nurl = "{push_url}"\nmin_interval_seconds = 0\n'
        f'[providers.{PROVIDER}]\ntype = "voipms"\napi_username = "bench"\n'
        'api_password = "bench"\nbase_url = "http://127.0.0.1:9/api/v1"\n'))
    adds = [["--config", str(adapter.config), "account", "add", f"user{n}", "--number",
             "+1" + did(n), "--provider", PROVIDER, "--password", f"pw{n}"]
            for n in range(args.accounts)]  # in one interpreter: a process start each is slow
    subprocess.run([sys.executable, "-c", "import json, sys; from adapter import cli; "
                    "sys.exit(max(cli.main(a) for a in json.loads(sys.argv[1])))",
                    json.dumps(adds)], cwd=ROOT, env=CHILD_ENV, check=True, capture_output=True)
    template = dict(line.split(" ", 1) for line in
                    adapter.cli("provider", "urls", PROVIDER).splitlines())["inbound"]
    adapter.serve()
    for n in range(args.accounts):
        status, body = request(f"{adapter.base}/acrobits/push-token", {
            "username": f"user{n}", "password": f"pw{n}", "selector": f"BENCH{n:04d}:00000000",
            "pushTokenOther": f"token-{n}", "pushappid_other": "bench.app", "device": f"d{n}"})
        if status != 200:
            raise BenchError(f"push token report answered {status}: {body[:200]!r}")
    generator = subprocess.Popen([sys.executable, __file__, "--load"], cwd=ROOT, text=True,
                                 env=CHILD_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    bench.stack.callback(stop, generator)
    rows, seq, complete = [], 0, True
    for rate in args.rates:
        params = (template, args.accounts, rate)
        seq = callbacks(generator, *params, args.warmup, args.concurrency, seq)["next"]
        with CpuWindow(adapter=adapter.pids, fake=lambda: [os.getpid()],
                       generator=lambda: [generator.pid]) as cpu:
            result = callbacks(generator, *params, args.duration, args.concurrency, seq)
        timings, seq = result["timings"], result["next"]
        deadline = time.monotonic() + 60  # every push of this run, however late
        while ((missing := timings.keys() - (arrived := arrivals(service, timings, args.accounts)
                                               ).keys()) and time.monotonic() < deadline):
            time.sleep(0.2)
        complete = complete and not missing
        push = percentiles([(arrived[s] - accepted) * 1000
                            for s, (_, accepted) in timings.items() if s in arrived])
        ack = percentiles([(accepted - sent) * 1000 for sent, accepted in timings.values()])
        rows.append([f"{rate:g}/s" if rate else f"max ({args.concurrency})",
                     f"{len(timings) / result['seconds']:.0f}", f"{ack[0]:.2f} / {ack[1]:.2f}", *push,
                     len(missing), f"{cpu.percent['adapter']:.0f}%",
                     f"{cpu.percent['generator'] + cpu.percent['fake']:.0f}%",
                     f"{cpu.percent['other']:.0f}%"])
    table(["load", "callbacks/s", "ack p50 / p99 ms", "push p50 ms", "push p99 ms",
           "push max ms", "missing", "adapter CPU", "load CPU", "other CPU"], rows)
    if service.violations:
        print(f"FAIL  the push service saw requests it would refuse: {service.violations[:3]}")
    return complete and not service.violations


if __name__ == "__main__":
    if sys.argv[1:] == ["--load"]:
        for line in sys.stdin:
            print(json.dumps(asyncio.run(load(*json.loads(line)))), flush=True)
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=[100, 200, 400, 0], help="0: back to back",
                        type=lambda v: [float(r) for r in v.split(",")])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--accounts", type=int, default=100, choices=range(1, 101), metavar="1-100")
    parser.add_argument("--concurrency", type=int, default=16)
    arguments = parser.parse_args()
    sys.exit(main(lambda bench: run(bench, arguments)))
