"""CPU per carrier request of the outbound HTTP clients, in one run.

    python bench/bench_http.py [--seconds 10] [--rounds 2] [--today REV]

Each client runs in a fresh process against a fake carrier in another (raw asyncio
on loopback: a voip.ms-style form POST in, a small JSON answer out, keep-alive).
Loads: ``paced``, 40 requests/s for ``--seconds`` to a carrier that answers in 2 s
(80 in flight, at most 100); ``flat``, 16 in flight to one that answers at once.
Figure: the client process's CPU time (all threads) per request, pacing included.
Clients: ``adapter`` (adapter/http_client.py), ``httpx2`` alone (httpcore's pool),
bare ``aiohttp``, and with ``--today REV`` that commit's adapter/http_client.py.
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FORM = {"api_username": "bench", "api_password": "secret", "method": "sendSMS",
        "did": "2025550101", "dst": "2025550102", "message": "hello from the bench"}
REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 35\r\n\r\n"
         b'{"status": "success", "sms": 23434}')
LOADS = {"paced": (2.0, 100), "flat": (0.0, 16)}  # the carrier's delay, most in flight


def fake_carrier(port: multiprocessing.Value, delay: float) -> None:
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(REPLY)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
        port.value = server.sockets[0].getsockname()[1]
        await server.serve_forever()
    asyncio.run(main())


def client(name: str, today: str | None):
    """``post(url) -> parsed JSON`` and ``close()`` for one candidate."""
    auth = ("bench", "secret")
    if name == "adapter":
        from adapter.http_client import HttpClient, Timeout
        http = HttpClient()
        async def post(url):
            return (await http.post(url, form=FORM, auth=auth, timeout=Timeout(15.0),
                                    headers={"User-Agent": "bench"})).json()
        return post, http.aclose
    if name == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        async def post(url):
            async with session.post(url, data=FORM, auth=aiohttp.BasicAuth(*auth),
                                    headers={"User-Agent": "bench"}) as answer:
                return json.loads(await answer.read())
        return post, session.close
    import httpx2
    if name == "httpx2":
        http = httpx2.AsyncClient(timeout=15.0, limits=httpx2.Limits(
            max_connections=100, max_keepalive_connections=100))
    else:  # today: the module as it was at that commit
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{today}:adapter/http_client.py"],
                                check=True, capture_output=True, text=True).stdout
        module = types.ModuleType("http_client_today")
        exec(compile(source, f"{today}:adapter/http_client.py", "exec"), module.__dict__)
        http = module.new_http_client()
    async def post(url):
        return (await http.post(url, data=FORM, auth=auth, headers={"User-Agent": "bench"})).json()
    return post, http.aclose


async def measure(name: str, load: str, url: str, seconds: float, today: str | None) -> dict:
    post, close = client(name, today)
    slots = asyncio.Semaphore(LOADS[load][1])
    await post(url)  # warm: imports, the first connection
    async def one():
        try:
            assert (await post(url))["status"] == "success"
        finally:
            slots.release()
    tasks, started, cpu = [], time.monotonic(), time.process_time()
    while time.monotonic() - started < seconds:
        await slots.acquire()
        tasks.append(asyncio.create_task(one()))
        if load == "paced":  # the next request's time, not a fixed sleep: no drift
            await asyncio.sleep(max(0.0, started + len(tasks) / 40 - time.monotonic()))
    await asyncio.gather(*tasks)
    cpu, wall, count = time.process_time() - cpu, time.monotonic() - started, len(tasks)
    await close()
    return {"client": name, "load": load, "requests": count,
            "cpu_ms_per_request": round(cpu * 1000 / count, 3),
            "requests_per_s": round(count / wall, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--today", metavar="REV", help="also measure that commit's client")
    parser.add_argument("--one", nargs=3, metavar=("CLIENT", "LOAD", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(measure(*args.one, args.seconds, args.today))))
        return 0
    names = ["adapter", "httpx2", "aiohttp"] + (["today"] if args.today else [])
    rows = []
    for load, (delay, _most) in LOADS.items():
        port = multiprocessing.Value("i", 0)
        carrier = multiprocessing.Process(target=fake_carrier, args=(port, delay), daemon=True)
        carrier.start()
        try:
            while not port.value:
                time.sleep(0.05)
            for _round in range(args.rounds):  # interleaved: machine noise hits all alike
                for name in names:
                    command = [sys.executable, __file__, "--one", name, load,
                               f"http://127.0.0.1:{port.value}/rest.php", "--seconds",
                               str(args.seconds), *(["--today", args.today] if args.today else [])]
                    done = subprocess.run(command, check=True, capture_output=True, text=True)
                    rows.append(json.loads(done.stdout))
                    print(done.stdout.strip(), file=sys.stderr, flush=True)
        finally:
            carrier.terminate()
    print("\n| client | load | CPU ms/request (rounds) | requests/s (flat) |\n|---|---|---:|---:|")
    for name, load in itertools.product(names, LOADS):
        mine = [row for row in rows if (row["client"], row["load"]) == (name, load)]
        cpu, rate = (" / ".join(str(row[key]) for row in mine)
                     for key in ("cpu_ms_per_request", "requests_per_s"))
        print(f"| {name} | {load} | {cpu} | {rate if load == 'flat' else '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
