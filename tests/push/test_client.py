"""The push client against the fake push service: the request and how each answer is read."""

import httpx2
import pytest

from adapter.http_client import Answer, new_http_client
from adapter.push import PushClient, PushOutcome
from adapter.push.client import classify
from tests.conftest import bound_socket
from tests.push.fake_push import GARBAGE, PUSH_TIMEOUT_SECONDS, SLOW, http_error, status

pytestmark = pytest.mark.anyio

NOTIFICATION = {
    "verb": "NotifyTextMessage", "AppId": "com.acrobits.softphone", "DeviceToken": "tok-1",
    "Selector": "12869E0E6E553673C54F29105A0647204C416A2A:7C3A0D14", "Id": "17",
    "ThreadId": "+12025550101", "UserName": "+12025550101", "UserDisplayName": "Alice",
    "Message": "Hi — 👋", "Badge": 2, "Sound": "default",
}


async def send(url: str, notification: dict = NOTIFICATION):
    async with new_http_client() as http:
        return await PushClient(http, url, PUSH_TIMEOUT_SECONDS).send(notification)


async def test_a_push_is_one_json_post_delivered_as_sent(push_service):
    result = await send(push_service.url)
    assert result.outcome is PushOutcome.DELIVERED
    assert push_service.delivered == [NOTIFICATION]  # every field, types and UTF-8 intact


@pytest.mark.parametrize("answer, outcome, reason", [
    (status(404), PushOutcome.GONE, "404"),
    (status(500), PushOutcome.TRANSIENT, "status 500"),
    (status(503), PushOutcome.TRANSIENT, "status 503"),
    (status(400), PushOutcome.REJECTED, "status 400"),
    (http_error(503), PushOutcome.TRANSIENT, "HTTP 503"),
    (http_error(429), PushOutcome.TRANSIENT, "HTTP 429"),
    (http_error(403), PushOutcome.REJECTED, "HTTP 403"),
    (GARBAGE, PushOutcome.TRANSIENT, "unreadable reply"),
    (SLOW, PushOutcome.TRANSIENT, "did not answer in time"),
])
async def test_each_answer_of_the_service_is_read(push_service, answer, outcome, reason):
    push_service.then(answer)
    result = await send(push_service.url)
    assert result.outcome is outcome
    assert reason in result.reason
    assert len(push_service.requests) == 1


async def test_an_unregistered_token_is_gone(push_service):
    push_service.unregistered.add("tok-1")
    result = await send(push_service.url)
    assert result.outcome is PushOutcome.GONE
    assert push_service.delivered == []


async def test_a_service_that_cannot_be_reached_is_transient():
    sock, url = bound_socket()  # bound, never listening: connections are refused
    try:
        result = await send(url + "/pnm2/send")
    finally:
        sock.close()
    assert result.outcome is PushOutcome.TRANSIENT
    assert "cannot reach" in result.reason


def test_the_fake_refuses_what_the_real_service_refuses(push_service):
    # The fake must be as strict as the service, or the tests above prove little.
    assert httpx2.get(push_service.url).status_code == 400
    assert httpx2.post(push_service.url, content=b"verb=NotifyTextMessage",
                       headers={"Content-Type": "application/json"}).status_code == 400
    assert httpx2.post(push_service.url, data={"verb": "NotifyTextMessage"}).status_code == 400
    missing_selector = {k: v for k, v in NOTIFICATION.items() if k != "Selector"}
    answer = httpx2.post(push_service.url, json=missing_selector)
    assert answer.status_code == 200 and answer.json()["status"] == 400
    assert httpx2.post(push_service.url, json={**NOTIFICATION, "Badge": "2"}).json()["status"] == 400
    assert len(push_service.violations) == 5
    push_service.violations.clear()  # expected here; the fixture checks for stray ones


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"status": ' * 100_000, b'{"status": "\xc2\xb2"}',
                                  b'{"status": "' + b"2" * 5000 + b'"}',
                                  b'{"status": 2' + b"0" * 5000 + b"}"])
def test_an_answer_nobody_can_read_is_transient(body):
    result = classify(Answer(200, body))
    assert result.outcome is PushOutcome.TRANSIENT
    assert "unreadable reply" in result.reason
