"""Two ``python -m adapter serve`` processes on one database.

Many devices send and fetch at once through both processes; afterwards every
message exists exactly once per account under a unique id, and every device
of an account holds the same history.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from adapter import cli
from tests.conftest import wait_for
from tests.emulator import AppEmulator

ACCOUNTS = {f"user{i}": f"+1202555010{i}" for i in range(4)}
MESSAGES_PER_DEVICE = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_servers(config_file):
    processes, urls = [], []
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
    try:
        for _ in range(2):
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "adapter", "--config", str(config_file), "serve",
                 "--port", str(port)],
                env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes):
            wait_for(lambda: process.poll() is not None or healthy(url), timeout=30,
                     what=f"{url} to serve")
            assert process.poll() is None, "serve exited"
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def healthy(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx2.TransportError:
        return False


def account_xml(config_file, username, capsys) -> str:
    capsys.readouterr()
    assert cli.main(["--config", str(config_file), "account-xml", username]) == 0
    return capsys.readouterr().out


def test_two_processes_lose_nothing_and_reuse_no_id(config_file, add_account, two_servers, capsys):
    for username, number in ACCOUNTS.items():
        add_account(username, number, password=f"{username}-pw")
    devices = []
    for username in ACCOUNTS:
        xml = account_xml(config_file, username, capsys)
        for server in two_servers:
            devices.append((username, AppEmulator(xml.replace("http://127.0.0.1:1", server),
                                                  f"{username}-pw", f"{username}@{server}")))

    def work(index: int) -> list[tuple[str, str, str, str]]:
        username, device = devices[index]
        peers = [n for u, n in ACCOUNTS.items() if u != username]
        sent = []
        for i in range(MESSAGES_PER_DEVICE):
            to = peers[(index + i) % len(peers)]
            text = f"{device.installid} #{i}"
            sent.append((username, to, text, device.send(to, text)))
            if i % 4 == 0:
                device.fetch()
        return sent

    with ThreadPoolExecutor(max_workers=len(devices)) as pool:
        sent = [item for batch in pool.map(work, range(len(devices))) for item in batch]
    for _, device in devices:
        device.sync()

    by_account = {u: [d for name, d in devices if name == u] for u in ACCOUNTS}
    for username, (first, second) in by_account.items():
        assert first.sent == second.sent, username
        assert first.received == second.received, username
        # Every id the account's sends got back is one sent message in the history.
        my_sends = [s for s in sent if s[0] == username]
        assert sorted(int(s[3]) for s in my_sends) == sorted(first.sent)
        assert {first.sent[int(s[3])]["sms_text"] for s in my_sends} == {s[2] for s in my_sends}
        # Every message addressed to the account's number arrived exactly once.
        expected = Counter(s[2] for s in sent if s[1] == ACCOUNTS[username])
        assert Counter(m["sms_text"] for m in first.received.values()) == expected
        all_ids = list(first.sent) + list(first.received)
        assert len(all_ids) == len(set(all_ids)), "an id was used twice"
    for _, device in devices:
        device.close()
