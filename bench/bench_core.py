#!/usr/bin/env python3
"""The adapter's two hot paths, send and fetch, against a bare Starlette app.

    python bench/bench_core.py [--rounds 3] [--duration 10] [--warmup 2] [--connections 16]

Each round, on a fresh SQLite file: ``baseline`` (bench/baseline_app.py under
the send's JSON POST), ``send`` (alice sends to bob, on-net, through
``python -m adapter serve``; accounts made with the CLI) and ``fetch`` (bob's
device fetches after his newest ids, so every answer is empty). The targets
are checked on the medians over the rounds: one round's baseline can be
thrown by a third by other work on the machine.
"""

import argparse
import json
import statistics
import sys

from common import (ALICE, BOB, HOST, BenchError, Wrk, free_port, main, request, send, stop,
                    table, wait_for)

TARGETS = {"send": 0.25, "fetch": 0.40}  # req/s, as a share of the baseline's
SEND_P99_TARGET_MS = 25.0


def fetch(base: str, last_id: str, last_sent_id: str) -> dict:
    status, body = request(f"{base}/acrobits/fetch", {
        "username": BOB[0], "password": BOB[2], "last_id": last_id,
        "last_sent_id": last_sent_id, "device": "bench"})
    if status != 200:
        raise BenchError(f"fetch answered {status}: {body[:200]!r}")
    return json.loads(body)


def newest_ids(base: str) -> tuple[str, str]:
    """Bob's device fetches page after page until both lists are empty."""
    last_id = last_sent_id = ""
    while (answer := fetch(base, last_id, last_sent_id))["received_smss"] or answer["sent_smss"]:
        for key, messages in (("received", answer["received_smss"]),
                              ("sent", answer["sent_smss"])):
            if messages:
                newest = str(max(int(m["sms_id"]) for m in messages))
                last_id, last_sent_id = ((newest, last_sent_id) if key == "received"
                                         else (last_id, newest))
    return last_id, last_sent_id


def one_round(bench, wrk: Wrk, number: int) -> dict:
    port = free_port()
    baseline = bench.start([sys.executable, "bench/baseline_app.py", str(port)],
                           bench.tmp / f"baseline-{number}.log")
    url = f"http://{HOST}:{port}/"
    wait_for(lambda: request(url, {"probe": 1}, timeout=1)[0] == 200, "baseline", proc=baseline)
    results = {"baseline": wrk.measure(url, "send.lua", server=lambda: [baseline.pid])}
    stop(baseline)
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
    ratios = {name: [r[name].rps / r["baseline"].rps for r in rounds] for name in TARGETS}
    send_p99 = statistics.median(r["send"].p99_ms for r in rounds)
    bad = sum(r.bad for results in rounds for r in results.values())
    checks = [(f"{name} >= {target} x baseline", ratios[name], target)
              for name, target in TARGETS.items()]
    print()
    table(["target", "rounds", "median", "result"], [
        [what, " / ".join(f"{v:.3f}" for v in values), f"{statistics.median(values):.3f}",
         "PASS" if statistics.median(values) >= target else "FAIL"]
        for what, values, target in checks] + [
        [f"send p99 < {SEND_P99_TARGET_MS:.0f} ms", "", f"{send_p99:.2f} ms",
         "PASS" if send_p99 < SEND_P99_TARGET_MS else "FAIL"],
        ["no non-2xx answers or socket errors", "", bad, "PASS" if not bad else "FAIL"]])
    return (all(statistics.median(v) >= t for _w, v, t in checks)
            and send_p99 < SEND_P99_TARGET_MS and not bad)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    Wrk.add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; targets on medians (3)")
    arguments = parser.parse_args()
    sys.exit(main(lambda bench: run(bench, arguments)))
