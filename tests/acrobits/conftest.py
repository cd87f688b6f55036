"""Fixtures the service tests share: a client of a live adapter, and two users."""

import pytest

from tests.app_client import ALICE, BOB, make_user


@pytest.fixture
def http(live_server):
    with live_server.client() as client:
        yield client


@pytest.fixture
def alice(http, add_account):
    return make_user(http, add_account, "alice", ALICE)


@pytest.fixture
def bob(http, add_account):
    return make_user(http, add_account, "bob", BOB)
