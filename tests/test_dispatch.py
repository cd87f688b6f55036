"""The outbox under failure: a killed server, a carrier outage, several workers.

The adapter runs as real ``python -m adapter serve`` processes; the carrier is
the strict fake voip.ms API (tests/providers/fake_voipms.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict

import httpx2
import pytest

from tests.app_client import User
from tests.conftest import bound_socket, run_cli, wait_for
from tests.providers.fake_voipms import (
    API_PASSWORD, API_USER, NAME, OUR_DID, OUR_NUMBER, SLOW, FakeVoipms,
)
from tests.conftest import serving

REMOTES = [f"+1312555{n:04d}" for n in range(180, 186)]
SEND_SECONDS = 0.2  # how long the fake carrier takes to answer each send


@pytest.fixture
def carrier():
    fake = FakeVoipms(API_USER, API_PASSWORD, dids={OUR_DID}, slow_seconds=SEND_SECONDS)
    with serving(fake.app) as url:
        fake.url = url
        yield fake
    assert fake.violations == [], "requests the real API would not take"


class Server:
    """``python -m adapter serve`` as a child process on a fixed port."""

    def __init__(self, config_file, port: int):
        self.config_file, self.port = config_file, port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapter", "--config", str(self.config_file), "serve",
             "--port", str(self.port)],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.healthy, timeout=30, what="serve to answer")

    def healthy(self) -> bool:
        assert self.process.poll() is None, "serve exited"
        try:
            return httpx2.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success
        except httpx2.TransportError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Seen once on a loaded machine; teardown must not fail the test.
                self.kill()


@pytest.fixture
def server(config_file, carrier, add_account):
    sock, url = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    config_file.write_text(
        config_file.read_text().replace("http://127.0.0.1:1", url)
        # A short lease: a killed worker's jobs are taken again within a second.
        .replace("[outbox]\n", "[outbox]\nlease_seconds = 1.0\n")
        + f'\n[providers.{NAME}]\ntype = "voipms"\napi_username = "{API_USER}"\n'
        f'api_password = "{API_PASSWORD}"\nbase_url = "{carrier.url}/api/v1"\n'
        "timeout_seconds = 0.5\n")
    add_account("alice", OUR_NUMBER, password="alice-pw", provider=NAME)
    process = Server(config_file, port)
    process.start()
    yield process
    process.stop()


def send_all(server: Server, count: int) -> dict[str, list[str]]:
    """Send ``count`` messages round-robin to REMOTES; texts per remote, in order."""
    sent = defaultdict(list)
    with httpx2.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
        alice = User(http, "alice", "alice-pw", OUR_NUMBER)
        for i in range(count):
            remote = REMOTES[i % len(REMOTES)]
            text = f"message {i} to {remote}"
            alice.send_ok(remote, text)
            sent[remote].append(text)
    return sent


def carrier_order(carrier: FakeVoipms) -> dict[str, list[str]]:
    """Texts per recipient in the order the carrier first took them."""
    seen = defaultdict(list)
    for sms in carrier.sent():
        remote = f"+1{sms.contact}"
        if sms.message not in seen[remote]:
            seen[remote].append(sms.message)
    return seen


def test_a_killed_server_forwards_every_acknowledged_message_after_restart(server, carrier):
    carrier.then(*[SLOW] * 100)  # every send takes SEND_SECONDS: the kill lands mid-batch
    sent = send_all(server, 30)
    wait_for(lambda: len(carrier.sends) >= 3, timeout=20, what="the dispatcher to be sending")
    server.kill()
    before_restart = len(carrier.sent())
    assert before_restart < 30, "everything went out before the kill; the test proves nothing"

    server.start()
    wait_for(lambda: carrier_order(carrier) == sent, timeout=60,
             what="every acknowledged message to reach the carrier")
    # A send cut off by the kill is looked up at the carrier (getSMS), not resent.
    texts = [sms.message for sms in carrier.sent()]
    assert len(texts) == len(set(texts)), "a message the carrier had taken was sent again"


def test_a_carrier_outage_holds_messages_and_delivers_them_in_order(server, carrier):
    carrier.outage = True
    sent = send_all(server, 18)
    wait_for(lambda: len(carrier.calls) >= 6, timeout=20, what="attempts during the outage")
    assert carrier.sent() == []
    carrier.outage = False
    wait_for(lambda: carrier_order(carrier) == sent, timeout=60,
             what="the queued messages after the outage")


def test_a_job_past_its_age_is_dead_and_says_after_how_many_attempts(start_adapter, add_account,
                                                                    config_file, capsys):
    config_file.write_text(config_file.read_text().replace(
        "[outbox]\n", "[outbox]\nmax_age_seconds = 0.001\n"))
    # Connections to port 9 are refused: every attempt fails transiently.
    server = start_adapter(
        '[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'
        'base_url = "http://127.0.0.1:9/api/v1"\n')
    with server.client() as http:
        add_account("alice", OUR_NUMBER, password="pw", provider="voip")
        User(http, "alice", "pw", OUR_NUMBER).send_ok("+13125550180", "never arrives")

    def dead_line():
        capsys.readouterr()
        run_cli(config_file, "outbox", "list", "--state", "dead")
        return capsys.readouterr().out.strip()

    line = wait_for(dead_line, what="the job to die")
    assert "gave up after 1 attempt: cannot reach voip" in line
