"""Running a push job: the device's token is read when the push goes out."""

from datetime import UTC, datetime, timedelta

import pytest

from adapter.dispatch import RetryPolicy
from adapter.http_client import new_http_client
from adapter.passwords import HashCost, hash_password
from adapter.push import PushClient, Pusher
from adapter.messaging.routing import record_send
from adapter.store import NewMessage, Registration, Store, TokenPair
from adapter.store.outbox import utc
from tests.push.fake_push import http_error

CHEAP_HASH = hash_password("pw", HashCost(1, 8, 1))

pytestmark = pytest.mark.anyio
WORKER = "test-worker"
BOB = "+12025550102"


@pytest.fixture
async def store(config):
    store = Store(config.database_url)
    await store.migrate()
    for username, number in [("alice", "+12025550101"), ("bob", BOB)]:
        await store.create_account(username=username, password_hash=CHEAP_HASH,
                                   number=number, provider=None, display_name=None)
    yield store
    await store.close()


async def queue_push_to_bob(store) -> None:
    """bob's device S1 (token "t1"), then a message to bob: one push job."""
    bob = await store.account("bob")
    await store.report_push_token(bob.id, Registration("S1", other=TokenPair("t1", "app")))
    stored = await record_send(store, await store.account("alice"), NewMessage(BOB, "hi"))
    assert stored.pushes == 1


async def run_queued_job(store, url: str) -> None:
    [job] = await store.lease_jobs(WORKER, 10, 60)
    async with new_http_client() as http:
        await Pusher(store, PushClient(http, url, 2.0)).run(job, WORKER, RetryPolicy())


async def test_a_device_removed_since_the_job_was_queued_is_not_pushed(store, push_service):
    await queue_push_to_bob(store)
    assert await store.remove_push_token((await store.account("bob")).id, "S1")
    await run_queued_job(store, push_service.url)
    assert push_service.requests == []
    [job] = await store.jobs()
    assert job.state == "done" and "no push token" in job.last_error


async def test_a_device_now_signed_in_as_someone_else_is_not_pushed(store, push_service):
    await queue_push_to_bob(store)
    alice = await store.account("alice")
    await store.report_push_token(alice.id, Registration("S1", other=TokenPair("t1", "app")))
    await run_queued_job(store, push_service.url)
    assert push_service.requests == []


async def test_a_token_reported_since_the_job_was_queued_is_used(store, push_service):
    await queue_push_to_bob(store)
    bob = await store.account("bob")
    await store.report_push_token(bob.id, Registration("S1", other=TokenPair("t2", "app2")))
    await run_queued_job(store, push_service.url)
    [push] = push_service.delivered
    assert (push["DeviceToken"], push["AppId"], push["Badge"]) == ("t2", "app2", 1)
    [job] = await store.jobs()
    assert job.state == "done" and job.last_error is None


async def test_a_rate_limited_push_waits_as_long_as_the_service_asked(store, push_service):
    await queue_push_to_bob(store)
    push_service.then(http_error(429, retry_after="600"))
    before = datetime.now(UTC)
    await run_queued_job(store, push_service.url)
    [job] = await store.jobs()
    assert job.state == "queued" and job.last_error == "HTTP 429"
    # The backoff alone would try again within 2 s.
    assert utc(job.due_at) >= before + timedelta(seconds=600)
