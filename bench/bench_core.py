#!/usr/bin/env python3
"""The adapter's two hot paths, send and fetch, against a bare Starlette app.

    python bench/bench_core.py [--rounds 3] [--duration 10] [--warmup 2] [--connections 16]

What is measured: bench/RESULTS.md.
"""

import argparse
import json
import statistics
import sys

from common import (ALICE, BOB, HOST, BenchError, Wrk, free_port, main, request, send, stop,
                    table, wait_for)

TARGETS = {"send": 0.25, "fetch": 0.40}  # req/s, as a share of the baseline's
SEND_P99_TARGET_MS = 25.0


def newest_ids(base: str) -> list[str]:
    """Bob's device fetches page after page until both lists are empty: its cursors."""
    cursors = {"received_smss": "", "sent_smss": ""}
    while True:
        status, body = request(f"{base}/acrobits/fetch", {
            "username": BOB[0], "password": BOB[2], "last_id": cursors["received_smss"],
            "last_sent_id": cursors["sent_smss"], "device": "bench"})
        if status != 200:
            raise BenchError(f"fetch answered {status}: {body[:200]!r}")
        answer = json.loads(body)
        if not any(answer[key] for key in cursors):
            return list(cursors.values())
        for key in cursors:
            if answer[key]:
                cursors[key] = str(max(int(m["sms_id"]) for m in answer[key]))


def one_round(bench, wrk: Wrk, number: int) -> dict:
    port = free_port()
    server = bench.start([sys.executable, "bench/baseline_app.py", str(port)],
                         bench.tmp / f"baseline-{number}.log")
    url = f"http://{HOST}:{port}/"
    wait_for(lambda: request(url, {"probe": 1}, timeout=1)[0] == 200, "baseline", proc=server)
    results = {"baseline": wrk.measure(url, "send.lua", server=lambda: [server.pid])}
    stop(server)
    adapter = bench.adapter(f"round{number}", bench.database(f"round{number}"))
    for user in (ALICE, BOB):
        adapter.add(user)
    adapter.serve()
    # Bob sends once so both his cursors are real ids; each password's first
    # check (argon2) is paid before the runs.
    send(adapter.base, BOB, ALICE[1], "hello alice")
    send(adapter.base, ALICE, BOB[1], "hello bob")
    results["send"] = wrk.measure(f"{adapter.base}/acrobits/send", "send.lua",
                                  server=adapter.pids)
    cursors = newest_ids(adapter.base)
    results["fetch"] = wrk.measure(f"{adapter.base}/acrobits/fetch", "fetch.lua", cursors,
                                   server=adapter.pids)
    adapter.check_alive()
    adapter.stop()
    return results


def run(bench, args) -> bool:
    wrk = Wrk.from_args(args)
    rounds = [one_round(bench, wrk, n) for n in range(1, args.rounds + 1)]
    table(["round", "scenario", "req/s", "p50 ms", "p99 ms", "bad", "server CPU", "wrk CPU",
           "other CPU"],
          [[n, name, r.rps, r.p50_ms, r.p99_ms, r.bad, f"{r.cpu['server']:.0f}%",
            f"{r.cpu['load']:.0f}%", f"{r.cpu['other']:.0f}%"]
           for n, results in enumerate(rounds, 1) for name, r in results.items()])
    verdict = []
    for name, target in TARGETS.items():
        ratios = [r[name].rps / r["baseline"].rps for r in rounds]
        verdict.append([f"{name} >= {target} x baseline", " / ".join(f"{v:.3f}" for v in ratios),
                        f"{statistics.median(ratios):.3f}", statistics.median(ratios) >= target])
    p99 = statistics.median(r["send"].p99_ms for r in rounds)
    bad = sum(r.bad for results in rounds for r in results.values())
    verdict += [[f"send p99 < {SEND_P99_TARGET_MS:.0f} ms", "", f"{p99:.2f} ms",
                 p99 < SEND_P99_TARGET_MS], ["no non-2xx answers or socket errors", "", bad, not bad]]
    print()
    table(["target", "rounds", "median", "result"], verdict)
    return all(row[-1] for row in verdict)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    Wrk.add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; targets on medians (3)")
    arguments = parser.parse_args()
    sys.exit(main(lambda bench: run(bench, arguments)))
