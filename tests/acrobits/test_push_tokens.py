"""Push Token Reporter and Account Removal Reporter: what is stored, moved and removed."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from adapter.access_log import mask_query
from adapter.app import ACCOUNT_REMOVAL_PATH, PUSH_TOKEN_PATH
from adapter.store.schema import accounts, push_tokens
from tests.push.fake_push import on_database, report_token, stored_devices

BAD_CREDENTIALS = {"message": "Invalid username or password"}
# Base64 tokens carry "+", "/" and "=", which form encoding must keep intact.
TOKEN = "a+b/c=="
APP = "com.acrobits.cloudsoftphone"
S1 = "12869E0E6E553673C54F29105A0647204C416A2A:7C3A0D14"
S2 = "22869E0E6E553673C54F29105A0647204C416A2A:00000002"
S3 = "32869E0E6E553673C54F29105A0647204C416A2A:00000003"


@pytest.fixture
def devices(live_server):
    return lambda: stored_devices(live_server.config.database_url)


@pytest.fixture
def owners(live_server):
    """selector -> username of the account it belongs to."""
    def read():
        return dict(on_database(live_server.config.database_url, lambda conn: conn.execute(
            sa.select(push_tokens.c.selector, accounts.c.username)
            .join_from(push_tokens, accounts)).all()))
    return read


def pairs(row: dict) -> dict[str, tuple[str, str]]:
    return {name: (row[f"{name}_token"], row[f"{name}_app_id"]) for name in ("other", "call", "legacy")}


def test_a_report_stores_every_pair_and_the_installation(http, alice, devices, owners):
    answer = report_token(http, alice, S1, other=("msg-token", APP), call=("voip-token", APP + ".voip"),
                          legacy=("old-token", APP), device="install-1")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"selector": S1, "stored": ["other", "call", "legacy"]}
    row = devices()[S1]
    assert pairs(row) == {"other": ("msg-token", APP), "call": ("voip-token", APP + ".voip"),
                          "legacy": ("old-token", APP)}
    assert row["device"] == "install-1"
    assert owners() == {S1: "alice"}


def test_form_posts_and_get_queries_work_too(http, alice, devices):
    form = {**alice.credentials, "selector": S1, "pushTokenOther": TOKEN, "pushappid_other": APP}
    assert http.post(PUSH_TOKEN_PATH, data=form).status_code == 200
    # Spellings operators type in hand-written templates.
    query = {**alice.credentials, "selector": S2, "token_msgs": TOKEN + "2", "appid_msgs": APP,
             "token": "legacy", "appid": APP}
    assert http.get(f"{PUSH_TOKEN_PATH}?{urlencode(query)}").status_code == 200
    stored = devices()
    assert pairs(stored[S1])["other"] == (TOKEN, APP)
    assert pairs(stored[S2])["other"] == (TOKEN + "2", APP)
    assert pairs(stored[S2])["legacy"] == ("legacy", APP)


def test_empty_tokens_are_ignored_and_keep_what_was_stored(http, alice, devices):
    assert report_token(http, alice, S1).json()["stored"] == []
    assert devices() == {}  # nothing reported, nothing stored
    report_token(http, alice, S1, other=("msg-token", APP), device="install-1")
    before = devices()[S1]
    # Later starts report the legacy pair only, an empty message token, a token
    # without its app id, and a variable the app did not substitute.
    assert report_token(http, alice, S1, legacy=("old", APP)).json()["stored"] == ["legacy"]
    assert report_token(http, alice, S1, other=("new-token", "")).json()["stored"] == []
    answer = http.post(PUSH_TOKEN_PATH, json={**alice.credentials, "selector": S1,
                                              "pushTokenOther": "%pushTokenOther%",
                                              "pushappid_other": "%pushappid_other%"})
    assert answer.json()["stored"] == []
    after = devices()[S1]
    assert pairs(after)["other"] == pairs(before)["other"] == ("msg-token", APP)
    assert pairs(after)["legacy"] == ("old", APP)
    assert after["device"] == "install-1"  # a report without installid keeps it


def test_an_account_may_have_many_devices(http, alice, devices, owners):
    for n, selector in enumerate((S1, S2, S3)):
        report_token(http, alice, selector, other=(f"token-{n}", APP), device=f"install-{n}")
    assert owners() == {S1: "alice", S2: "alice", S3: "alice"}
    assert {pairs(row)["other"][0] for row in devices().values()} == {"token-0", "token-1", "token-2"}


def test_a_token_reported_under_another_account_moves_to_it(http, alice, bob, devices, owners):
    report_token(http, alice, S1, other=("shared-phone", APP), device="phone")
    report_token(http, alice, S2, other=("alice-desk", APP), device="desk")
    # The phone now signs in as bob (a new selector, the same device token):
    # alice's messages must not be pushed to it any more.
    report_token(http, bob, S3, other=("shared-phone", APP), device="phone")
    assert owners() == {S2: "alice", S3: "bob"}
    # A selector reported by another account moves with everything it holds.
    report_token(http, bob, S2, legacy=("desk-legacy", APP))
    assert owners() == {S2: "bob", S3: "bob"}
    assert pairs(devices()[S2])["other"] == ("alice-desk", APP)


def test_the_legacy_token_moves_too(http, alice, bob, owners):
    report_token(http, alice, S1, legacy=("old-phone", APP))
    report_token(http, bob, S2, legacy=("old-phone", APP))
    assert owners() == {S2: "bob"}


def test_account_removal_deletes_that_selector_only(http, alice, bob, owners):
    report_token(http, alice, S1, other=("t1", APP))
    report_token(http, alice, S2, other=("t2", APP))
    answer = http.post(ACCOUNT_REMOVAL_PATH, json={**alice.credentials, "selector": S1,
                                                   "device": "install-1"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"selector": S1, "removed": True}
    assert owners() == {S2: "alice"}
    # Another account cannot remove alice's device; a repeat removes nothing.
    assert http.post(ACCOUNT_REMOVAL_PATH, json={**bob.credentials, "selector": S2}).json() == \
        {"selector": S2, "removed": False}
    form = {**alice.credentials, "selector": S1}
    assert http.post(ACCOUNT_REMOVAL_PATH, data=form).json()["removed"] is False
    assert owners() == {S2: "alice"}


@pytest.mark.parametrize("path", [PUSH_TOKEN_PATH, ACCOUNT_REMOVAL_PATH])
def test_both_reporters_authenticate_like_send(http, alice, devices, path):
    report_token(http, alice, S1, other=("t1", APP))
    for credentials in ({"username": "alice", "password": "wrong"},
                        {"username": "nobody", "password": "x"}, {}):
        answer = http.post(path, json={**credentials, "selector": S1,
                                       "pushTokenOther": "evil", "pushappid_other": APP})
        assert answer.status_code == 401
        assert answer.json() == BAD_CREDENTIALS
    assert pairs(devices()[S1])["other"] == ("t1", APP)


@pytest.mark.parametrize("path", [PUSH_TOKEN_PATH, ACCOUNT_REMOVAL_PATH])
def test_a_selector_is_required(http, alice, devices, path):
    for selector in ("", "  ", "%selector%"):
        answer = http.post(path, json={**alice.credentials, "selector": selector,
                                       "pushTokenOther": "t", "pushappid_other": APP})
        assert answer.status_code == 400
        assert "selector" in answer.json()["message"]
    assert devices() == {}


def test_over_long_values_are_refused_not_cut(http, alice, devices):
    answer = report_token(http, alice, S1, other=("t" * 1025, APP))
    assert answer.status_code == 400
    assert "pushTokenOther" in answer.json()["message"]
    assert report_token(http, alice, "s" * 256, other=("t", APP)).status_code == 400
    assert devices() == {}


def test_push_tokens_are_masked_in_the_access_log():
    masked = mask_query(f"username=alice&pushTokenOther={TOKEN}&token_msgs=x&pushToken=y&selector=S")
    assert TOKEN not in masked and "=x" not in masked and "=y" not in masked
    assert "username=alice" in masked and "selector=S" in masked
