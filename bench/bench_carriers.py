#!/usr/bin/env python3
"""Carriers: app-facing send latency with an instant and a slow carrier; dispatcher throughput.

    python bench/bench_carriers.py [--parts latency,dispatch] [--rounds 3] [--rate 40]
        [--slow-seconds 2] [--conversations 1,4,16,64] [--messages 2000] [--postgresql-url [URL]]

The carrier is the tests' fake voip.ms (tests/providers/fake_voipms.py), served
in this process; alice sends through it. What is measured: bench/RESULTS.md.
"""

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime

from common import ALICE, POSTGRESQL_URL, BenchError, CpuWindow, Wrk, main, send, table, wait_for
from tests.providers.fake_voipms import SLOW, SUCCESS, FakeVoipms

PROVIDER, API_USER, API_PASSWORD = "vms", "bench@example.com", "bench-api-secret"
CONVERSATIONS, BATCH = 100, 100  # of the latency runs: room for 2 s x 40/s sends in flight


def recipient(index: int) -> str:
    return f"+{13125550100 + index}"


class Carrier:
    """A fake voip.ms served here, and an adapter whose alice sends through it."""

    def __init__(self, bench, name: str, slow_seconds: float, postgresql_url, batch=None):
        self.fake = FakeVoipms(API_USER, API_PASSWORD, dids={ALICE[1][2:]},
                               slow_seconds=slow_seconds,
                               default_answer=SLOW if slow_seconds else SUCCESS)
        self.name, self.slow_seconds = name, slow_seconds
        url = bench.serve(self.fake.app)
        self.adapter = bench.adapter(name, bench.database(name, postgresql_url), (
            f'\n[providers.{PROVIDER}]\ntype = "voipms"\napi_username = "{API_USER}"\n'
            f'api_password = "{API_PASSWORD}"\nbase_url = "{url}/api/v1"\n'
            f"timeout_seconds = {max(5.0, slow_seconds + 3)}\n"
            + (f"\n[outbox]\nbatch = {batch}\n" if batch else "")))
        self.adapter.add(ALICE, "--provider", PROVIDER)

    def sends(self) -> int:
        return len(self.fake.history)

    def jobs(self) -> Counter:
        """Outbox jobs by state (``outbox list``)."""
        return Counter(line.split("\t")[1] for line in
                       self.adapter.cli("outbox", "list", "--limit", "1000000").splitlines())

    def problems(self) -> list[str]:
        """Requests the real API would refuse, messages sent twice or out of order."""
        last: dict[str, int] = {}
        seen, found = set(), list(self.fake.violations)
        for sms in self.fake.history:
            if match := re.search(r"#(\d+)$", sms.message):
                number = int(match.group(1))
                if number in seen or number <= last.get(sms.contact, -1):
                    found.append(f"#{number} to {sms.contact} twice or out of order")
                seen.add(number)
                last[sms.contact] = number
        return found


def latency(bench, wrk: Wrk, args) -> list[tuple[str, bool]]:
    carriers = [Carrier(bench, "instant", 0.0, args.postgresql_url, BATCH),
                Carrier(bench, f"{args.slow_seconds:g} s", args.slow_seconds,
                        args.postgresql_url, BATCH)]
    for carrier in carriers:
        carrier.adapter.serve()
        send(carrier.adapter.base, ALICE, recipient(0), "hello carrier")  # pays for argon2
        wait_for(lambda: carrier.sends(), f"the first send through the {carrier.name} carrier")
    runs = []  # (round, carrier, load, WrkResult, carried/s, backlog)

    def measure(carrier: Carrier, number, load: str, script_args: list[str]) -> None:
        before = carrier.sends()
        result = wrk.measure(f"{carrier.adapter.base}/acrobits/send", "send_offnet.lua",
                             script_args, adapter=carrier.adapter.pids, fake=lambda: [os.getpid()])
        carried = (carrier.sends() - before) / (wrk.warmup + wrk.duration)
        jobs = carrier.jobs()
        runs.append((number, carrier, load, result, carried, jobs["queued"] + jobs["leased"]))

    pause = f"{wrk.connections * 1000 / args.rate:g}"
    for number in range(1, args.rounds + 1):
        for carrier in carriers:
            measure(carrier, number, f"paced {args.rate:g}/s", [str(CONVERSATIONS), pause])
    for carrier in carriers:  # the slow carrier's backlog grows without bound: last
        measure(carrier, 1, "flat out", [str(CONVERSATIONS)])
        carrier.adapter.check_alive()
        carrier.adapter.stop()
    table(["round", "carrier", "load", "req/s", "p50 ms", "p99 ms", "max ms", "bad",
           "adapter CPU", "fake CPU", "other CPU", "carried/s", "backlog", "adapter ms/send"],
          [[n, c.name, load, r.rps, r.p50_ms, r.p99_ms, r.max_ms, r.bad,
            f"{r.cpu['adapter']:.0f}%", f"{r.cpu['fake']:.0f}%", f"{r.cpu['other']:.0f}%",
            f"{carried:.1f}", backlog, 10 * r.cpu["adapter"] / r.rps]
           for n, c, load, r, carried, backlog in runs])
    checks = [(f"{c.name} carrier, {load} #{n}: only 2xx answers", r.bad == 0)
              for n, c, load, r, _carried, _backlog in runs]
    checks += [(f"{c.name} carrier, {load} #{n}: no send waited for it ({r.max_ms:.0f} ms)",
                r.max_ms < c.slow_seconds * 1000)
               for n, c, load, r, _carried, _backlog in runs if c.slow_seconds]
    medians = [[statistics.median(getattr(r, name) for _n, c, load, r, _a, _b in runs
                                  if c is carrier and load.startswith("paced"))
                for name in ("p50_ms", "p99_ms")] for carrier in carriers]
    (fast_p50, fast_p99), (slow_p50, slow_p99) = medians
    close = [abs(a - b) <= 2.0 or max(a, b) <= 1.5 * min(a, b)
             for a, b in ((fast_p50, slow_p50), (fast_p99, slow_p99))]
    checks.append((f"paced, medians instant / slow: p50 {fast_p50:.2f} / {slow_p50:.2f} ms, "
                   f"p99 {fast_p99:.2f} / {slow_p99:.2f} ms: within 1.5x or 2 ms", all(close)))
    checks += [(f"{c.name}: {problem}", False) for c in carriers for problem in c.problems()[:5]]
    return checks


def queue_messages(database_url: str, count: int, conversations: int) -> None:
    from adapter.store import NewMessage, Store

    async def queue() -> None:
        store = Store(database_url)
        try:
            account = await store.account(ALICE[0])
            for index in range(count):  # "#N": the order the carrier must see per conversation
                message = NewMessage(peer=recipient(index % conversations),
                                     body=f"bench {index // conversations} #{index}")
                if (await store.record_send(account, message, PROVIDER)).status != "queued":
                    raise BenchError("a message to a carrier was not queued")
        finally:
            await store.close()

    asyncio.run(queue())


def dispatch(bench, args, conversations: int) -> tuple[list, list[tuple[str, bool]]]:
    carrier = Carrier(bench, f"dispatch-{conversations}", 0.0, args.postgresql_url)
    queue_messages(carrier.adapter.database_url, args.messages, conversations)
    started = datetime.now(UTC)
    carrier.adapter.serve(wait=False)  # the dispatcher starts before HTTP is served
    history = carrier.fake.history
    wait_for(lambda: history, "the first send", 60, carrier.adapter.servers[0],
             carrier.adapter.logs[0])
    with CpuWindow(adapter=carrier.adapter.pids) as cpu:
        first_seen, deadline = len(history), time.monotonic() + args.drain_seconds
        while len(history) < args.messages and time.monotonic() < deadline:
            carrier.adapter.check_alive()
            time.sleep(0.05)
    carried, complete = len(history), len(history) >= args.messages
    seconds = (history[-1].at - history[0].at).total_seconds() if complete else cpu.elapsed
    if complete:  # the last settles may still be committing
        wait_for(lambda: carrier.jobs()["done"] == args.messages, "every job done")
    carrier.adapter.stop()
    jobs = carrier.jobs()
    ms_per_message = 10 * cpu.percent["adapter"] * cpu.elapsed / max(1, carried - first_seen)
    row = [conversations, f"{carried} of {args.messages}", seconds,
           (carried - 1) / seconds if complete else carried / seconds,
           (history[0].at - started).total_seconds(), f"{cpu.percent['adapter']:.0f}%",
           f"{cpu.percent['other']:.0f}%", ms_per_message, "complete" if complete else "time-boxed"]
    accounted = (jobs["done"] == carried == args.messages and not jobs["queued"] + jobs["leased"]
                 if complete else jobs["queued"] + jobs["leased"] + jobs["done"] == args.messages)
    checks = [(f"dispatch {conversations}: {problem}", False) for problem in carrier.problems()]
    checks.append((f"dispatch {conversations}: every job accounted for: {dict(jobs)}", accounted))
    return row, checks


def run(bench, args) -> bool:
    checks = []
    if "latency" in args.parts:
        checks += latency(bench, Wrk.from_args(args), args)
    if "dispatch" in args.parts:
        rows = []
        for conversations in args.conversations:
            row, found = dispatch(bench, args, conversations)
            rows.append(row)
            checks += found
        print()
        table(["conversations", "carried", "seconds", "msg/s", "startup s", "adapter CPU",
               "other CPU", "adapter ms/msg", ""], rows)
    print()
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return all(ok for _what, ok in checks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    Wrk.add_arguments(parser)
    parser.add_argument("--parts", default="latency,dispatch", type=lambda v: v.split(","))
    parser.add_argument("--rounds", type=int, default=3, help="paced runs per carrier (3)")
    parser.add_argument("--rate", type=float, default=40.0, help="sends/s of paced runs (40)")
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="the slow carrier (2)")
    parser.add_argument("--conversations", default=[1, 4, 16, 64],
                        type=lambda v: [int(c) for c in v.split(",")])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument("--postgresql-url", nargs="?", const=POSTGRESQL_URL,
                        help="on PostgreSQL (default: $ADAPTER_TEST_POSTGRESQL_URL)")
    arguments = parser.parse_args()
    sys.exit(main(lambda bench: run(bench, arguments)))
