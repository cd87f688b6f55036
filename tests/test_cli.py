"""The command line, run as operators run it: ``python -m adapter ...``."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent


def adapter(config_file, *args, env=None, input=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(config_file), *args],
        capture_output=True, text=True, env=environment, input=input, timeout=60,
    )


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


def test_migrate_is_idempotent(config_file):
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


def test_serve_says_how_to_start_on_an_empty_database(config_file):
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter", "--config", str(config_file), "serve", "--port", "0"],
        stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    try:
        def read_until_running():
            line = process.stderr.readline()
            lines.append(line)
            return "Uvicorn running" in line or not line

        wait_for(read_until_running, timeout=30, what="serve to start")
    finally:
        process.terminate()
        process.wait(timeout=10)
    log = "".join(lines)
    assert "No accounts yet" in log
    assert "account add" in log and "account-xml" in log


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
