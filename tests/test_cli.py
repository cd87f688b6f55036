"""The command line, run as operators run it: ``python -m adapter ...``.

Most commands go through the CLI's entry point in this process
(:func:`adapter`), its stdin, stdout, stderr and environment as a process
would have them; a real ``python -m adapter`` (:func:`adapter_process`)
where only a process shows it: the entry point itself, ``serve``, the
working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from adapter import cli
from adapter.logs import OneLineFormatter
from adapter.store import Store
from tests.conftest import bound_socket, wait_for

ROOT = Path(__file__).resolve().parent.parent


def adapter_process(config_file, *args, env=None, input=None) -> subprocess.CompletedProcess:
    environment = without_adapter_variables()
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(config_file), *args],
        capture_output=True, text=True, env=environment, input=input, timeout=60,
    )


def adapter(config_file, *args, env=None, input=None) -> subprocess.CompletedProcess:
    """What :func:`adapter_process` would give, without starting a Python:
    the same entry point, environment, stdin (not a terminal) and log lines
    (the handler ``configure_logging`` gives a process) on stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    log_lines = logging.StreamHandler(stderr)
    log_lines.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    saved_environment, saved_level = dict(os.environ), root.level
    os.environ.clear()
    os.environ.update({**without_adapter_variables_of(saved_environment), **(env or {})})
    root.addHandler(log_lines)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
                _stdin(io.StringIO(input or "")):
            try:
                code = cli.main(["--config", str(config_file), *args])
            except SystemExit as exit:  # argparse: --help, usage errors
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    finally:
        root.removeHandler(log_lines)
        root.setLevel(saved_level)
        os.environ.clear()
        os.environ.update(saved_environment)
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def _stdin(stream):
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("adapter: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", [
    [], ["serve"], ["migrate"], ["account"], ["account", "add"], ["account", "list"],
    ["account", "remove"], ["account", "passwd"], ["account-xml"],
])
def test_every_command_has_help(config_file, command):
    result = adapter(config_file, *command, "--help")
    assert result.returncode == 0
    assert "usage:" in result.stdout


def test_python_m_adapter_is_the_entry_point(config_file):
    result = adapter_process(config_file, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    assert_one_line_error(adapter_process(config_file, "account-xml", "nobody"), "nobody")


def test_account_lifecycle(config_file):
    added = adapter(config_file, "account", "add", "alice", "--number", "(202) 555-0101",
                    "--display-name", "Alice A", env={"ADAPTER_PASSWORD": "pw-from-env"})
    assert added.returncode == 0, added.stderr
    assert "+12025550101" in added.stdout
    assert adapter(config_file, "account", "add", "bob", "--number", "tel:+12025550101",
                   "--password", "x").returncode == 0
    listed = adapter(config_file, "account", "list")
    assert listed.stdout.splitlines() == [
        "alice\t+12025550101\tloopback\tAlice A",
        "bob\t+12025550101\tloopback\t",
    ]
    assert adapter(config_file, "account", "passwd", "bob", "--password", "y").returncode == 0
    assert adapter(config_file, "account", "remove", "bob").returncode == 0
    assert adapter(config_file, "account", "list").stdout.splitlines() == [
        "alice\t+12025550101\tloopback\tAlice A"
    ]


def test_errors_are_one_line(config_file, tmp_path):
    assert adapter(config_file, "account", "add", "alice", "--number", "2025550101",
                   "--password", "pw").returncode == 0
    assert_one_line_error(
        adapter(config_file, "account", "add", "alice", "--number", "2025550101", "--password", "p"),
        "already exists")
    assert_one_line_error(
        adapter(config_file, "account", "add", "carol", "--number", "not a number", "--password", "p"),
        "--number")
    assert_one_line_error(
        adapter(config_file, "account", "add", "carol", "--number", "2025550109",
                "--provider", "nope", "--password", "p"),
        "'nope'", "not configured")
    # No password anywhere and no terminal to ask on.
    assert_one_line_error(
        adapter(config_file, "account", "add", "carol", "--number", "2025550109", input=""),
        "password")
    assert_one_line_error(adapter(config_file, "account", "remove", "nobody"), "nobody")
    assert_one_line_error(adapter(config_file, "account", "passwd", "nobody", "--password", "x"),
                          "nobody")
    assert_one_line_error(adapter(config_file, "account-xml", "nobody"), "nobody")
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('public_url = "nowhere"\n')
    assert_one_line_error(adapter(bad_config, "migrate"), str(bad_config), "'public_url'")


def test_a_shared_number_keeps_one_provider(tmp_path):
    config_file = tmp_path / "adapter.toml"
    config_file.write_text(
        f'database_url = "sqlite:///{tmp_path}/db.sqlite3"\n'
        '[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'
    )
    assert adapter(config_file, "account", "add", "a", "--number", "2025550101",
                   "--provider", "voip", "--password", "p").returncode == 0
    assert_one_line_error(
        adapter(config_file, "account", "add", "b", "--number", "2025550101", "--password", "p"),
        "already routes through provider 'voip'")


def test_a_carrier_number_must_be_one_the_carrier_can_send_from(config_file):
    config_file.write_text(config_file.read_text() + VOIPMS)
    assert_one_line_error(
        adapter(config_file, "account", "add", "a", "--number", "+44 20 7946 0958",
                "--provider", "voip", "--password", "p"),
        "'voip' (voipms) cannot send from +442079460958", "GB")
    assert adapter(config_file, "account", "add", "a", "--number", "+1 416 555 0100",
                   "--provider", "voip", "--password", "p").returncode == 0


def test_migrate_is_idempotent(config_file, empty_database_url):
    config_file.write_text(f'database_url = "{empty_database_url}"\n')
    first = adapter(config_file, "migrate")
    assert first.returncode == 0 and "applied migrations 1" in first.stdout
    second = adapter(config_file, "migrate")
    assert second.returncode == 0 and "up to date" in second.stdout


def test_account_xml_points_at_public_url(config_file):
    config_file.write_text(config_file.read_text().replace(
        "http://127.0.0.1:1", "https://sms.example.com/base"))
    adapter(config_file, "account", "add", "alice", "--number", "2025550101", "--password", "p")
    result = adapter(config_file, "account-xml", "alice")
    assert result.returncode == 0, result.stderr
    assert "<genericSmsSendUrl>https://sms.example.com/base/acrobits/send</genericSmsSendUrl>" \
        in result.stdout
    assert ("<pushTokenReporterUrl>https://sms.example.com/base/acrobits/push-token"
            "</pushTokenReporterUrl>") in result.stdout
    assert ("<accountRemovalReporterUrl>https://sms.example.com/base/acrobits/account-removal"
            "</accountRemovalReporterUrl>") in result.stdout


def free_port() -> int:
    sock, _ = bound_socket()
    with sock:
        return sock.getsockname()[1]


class Stderr:
    """A child's stderr, read by a thread, so that waiting for a line has a
    deadline even when the child falls silent."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(process.stderr), daemon=True).start()

    def wait_for(self, marker: str, timeout: float = 30) -> str:
        wait_for(lambda: marker in self.text, timeout=timeout, what=f"{marker!r} on stderr")
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_serve_says_how_to_start_and_the_hint_works_as_printed(tmp_path, config_file):
    # No public_url: the server's own address goes into Account XML and callback URLs.
    config_file.write_text(config_file.read_text().replace(
        'public_url = "http://127.0.0.1:1"\n', "") + VOIPMS)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter", "--config", str(config_file), "serve", "--port", str(port)],
        stderr=subprocess.PIPE, text=True, env=without_adapter_variables(),
    )
    try:
        log = Stderr(process).wait_for("Uvicorn running")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "No accounts yet" in log and "public_url is not set" in log
    [hint] = re.findall(r"Add one with:\s+(.*?)\s{3}then", log)
    assert hint.endswith("account add alice --number +12025550100")
    # Run exactly as printed, from elsewhere, with nothing but the system's PATH.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    added = subprocess.run(["bash", "-c", hint], cwd=elsewhere, capture_output=True, text=True,
                           timeout=60, env={"PATH": "/usr/bin:/bin", "ADAPTER_PASSWORD": "pw"})
    assert added.returncode == 0, added.stderr
    assert adapter(config_file, "account", "list").stdout.startswith("alice\t+12025550100")
    xml = adapter(config_file, "account-xml", "alice").stdout
    assert f"<genericSmsSendUrl>http://127.0.0.1:{port}/acrobits/send</genericSmsSendUrl>" in xml
    urls = adapter(config_file, "provider", "urls", "voip").stdout
    assert urls.startswith(f"inbound http://127.0.0.1:{port}/hooks/voip/inbound?token=")


VOIPMS = '[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'


def without_adapter_variables() -> dict[str, str]:
    return without_adapter_variables_of(os.environ)


def without_adapter_variables_of(environment) -> dict[str, str]:
    return {k: v for k, v in environment.items() if not k.startswith("ADAPTER_")}


@pytest.mark.parametrize("database_url, fragment", [
    ("postgresql://adapter:pw@127.0.0.1:1/adapter", "Connect call failed"),
    ("sqlite:////proc/no-such-dir/adapter.sqlite3", "cannot create the database directory"),
    ("sqlite:////proc/adapter.sqlite3", "cannot create or open the SQLite database"),
    ("sqlite:///{tmp_path}", "is a directory"),
])
@pytest.mark.parametrize("command", [["account", "list"], ["serve", "--port", "0"], ["migrate"]])
def test_an_unusable_database_is_one_line(tmp_path, database_url, fragment, command):
    config_file = tmp_path / "adapter.toml"
    config_file.write_text(f'database_url = "{database_url.format(tmp_path=tmp_path)}"\n')
    # serve's pre-flight is a process's start-up: run it as one.
    run = adapter_process if command[0] == "serve" else adapter
    result = run(config_file, *command)
    assert_one_line_error(result, fragment)
    assert "pw" not in result.stderr


def test_relative_database_paths_follow_the_config_file(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    config_file = etc / "adapter.toml"
    config_file.write_text('database_url = "sqlite:///./data/adapter.sqlite3"\n')
    for place in ("one", "two"):
        (tmp_path / place).mkdir()
    subprocess.run([sys.executable, "-m", "adapter", "--config", str(config_file), "account",
                    "add", "alice", "--number", "2025550101", "--password", "p"],
                   cwd=tmp_path / "one", check=True, capture_output=True, env=without_adapter_variables())
    listed = subprocess.run([sys.executable, "-m", "adapter", "--config", str(config_file),
                             "account", "list"], cwd=tmp_path / "two", capture_output=True,
                            text=True, env=without_adapter_variables())
    assert listed.stdout.startswith("alice\t")
    assert (etc / "data/adapter.sqlite3").is_file()
    assert not (tmp_path / "one/data").exists() and not (tmp_path / "two/data").exists()


def test_usage_mistakes_are_one_line(config_file):
    assert_one_line_error(adapter(config_file, "serve", "--port", "99999"), "--port", "99999")
    assert_one_line_error(adapter(config_file, "outbox", "list", "--limit", "-1"), "--limit")
    assert_one_line_error(adapter(config_file, "account", "add"), "username")
    assert_one_line_error(adapter(config_file, "no-such-command"), "no-such-command")


def test_account_list_says_when_there_are_none(config_file):
    listed = adapter(config_file, "account", "list")
    assert listed.returncode == 0 and listed.stdout == ""
    assert "no accounts" in listed.stderr and "account add" in listed.stderr


def test_display_names_stay_on_their_line(config_file, database_url):
    assert_one_line_error(
        adapter(config_file, "account", "add", "alice", "--number", "2025550101",
                "--password", "p", "--display-name", "Alice\nbob\t+1\tforged"),
        "display name")

    async def add_directly():  # as a name stored before such names were refused
        store = Store(database_url)
        try:
            await store.migrate()
            await store.create_account(username="bob", password_hash="x", number="+12025550102",
                                       provider=None, display_name="Bob\nmallory\t+1")
        finally:
            await store.close()

    asyncio.run(add_directly())
    assert adapter(config_file, "account", "list").stdout.splitlines() == [
        "bob\t+12025550102\tloopback\tBob\\nmallory\\t+1"]


def test_wheel_ships_the_account_xml_template(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "account_xml/templates/account.xml.j2" in names
    assert "adapter/store/migrations.py" in names


BAD_ALPHANUMERIC_ID = ('[providers.acu]\ntype = "aculab"\nusername = "u"\napi_key = "k"\n'
                       'alphanumeric_ids = { "+12025550101" = "ACME-Limited" }\n')


# cli.main checks the tables before any command runs; these three would use them.
@pytest.mark.parametrize("command", [
    ["serve", "--port", "0"], ["provider", "urls", "acu"],
    ["account", "add", "a", "--number", "2025550101", "--provider", "acu", "--password", "p"],
])
def test_a_bad_provider_table_stops_every_command(config_file, command):
    config_file.write_text(config_file.read_text() + BAD_ALPHANUMERIC_ID)
    result = adapter(config_file, *command)
    assert_one_line_error(result, str(config_file), """'providers.acu.alphanumeric_ids."+12025550101"'""",
                          "1-11 characters")
    assert result.returncode == 2
