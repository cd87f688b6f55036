"""dev.py, the quick start: what a new operator runs first."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx2
import pytest

from tests.test_cli import ROOT, Stderr, free_port, without_adapter_variables


def test_dev_py_passes_sigterm_on_to_the_server(config_file):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "run", "--config", str(config_file),
         "--port", str(port)],
        stderr=subprocess.PIPE, text=True, env=without_adapter_variables())
    try:
        stderr = Stderr(process)
        stderr.wait_for("Uvicorn running")
        process.send_signal(signal.SIGTERM)
        # The server itself got it and shut down cleanly (uvicorn then exits
        # with the signal's status, as a service manager expects).
        stderr.wait_for("Application shutdown complete", timeout=20)
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    # Nothing is left serving on the port.
    with pytest.raises(httpx2.TransportError):
        httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_what_an_operator_makes_in_the_checkout_is_ignored_by_git():
    made = ["adapter.toml", "data/adapter.sqlite3", "alice.xml"]
    ignored = subprocess.run(["git", "check-ignore", *made], cwd=ROOT, capture_output=True,
                             text=True)
    assert ignored.stdout.split() == made
    # The project's own XML templates and tests are not.
    kept = subprocess.run(["git", "check-ignore", "templates/account.xml.j2"], cwd=ROOT)
    assert kept.returncode == 1
