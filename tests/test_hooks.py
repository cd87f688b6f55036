"""The carrier webhooks' shared handling: here, how refused callbacks are logged."""

from __future__ import annotations

import logging

import httpx2
import pytest
from starlette.requests import Request

from adapter.config import Config
from adapter.hooks import webhook_request


VOIPMS = '[providers.voip]\ntype = "voipms"\napi_username = "u"\napi_password = "p"\n'


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "adapter.hooks" and r.levelno == logging.WARNING]


def test_a_flood_of_forged_callbacks_is_refused_without_flooding_the_log(start_adapter, caplog):
    server = start_adapter(VOIPMS)
    with caplog.at_level(logging.WARNING, logger="adapter.hooks"), server.client() as http:
        answers = [http.get("/hooks/voip/inbound", params={"token": f"guess-{i}", "id": str(i)})
                   for i in range(50)]
    assert {answer.status_code for answer in answers} == {401}
    assert len(warnings(caplog)) == 1
    assert isinstance(answers[0], httpx2.Response) and answers[0].json()["message"]


# -- the request as authenticate() sees it ---------------------------------------------------
SECRET = "s3cret"


def test_an_unauthenticated_callback_is_refused_however_malformed_its_body(start_adapter, caplog):
    server = start_adapter(VOIPMS + f'secret = "{SECRET}"\n')
    headers = {"Content-Type": "application/json"}
    with caplog.at_level(logging.WARNING, logger="adapter.hooks"), server.client() as http:
        forged = http.post("/hooks/voip/inbound", params={"token": "guess"}, content=b"{not json",
                           headers=headers)
        genuine = http.post("/hooks/voip/inbound", params={"token": SECRET}, content=b"{not json",
                            headers=headers)
        too_large = http.post("/hooks/voip/inbound", params={"token": SECRET},
                              content=b"x" * (server.config.max_request_bytes + 1))
    assert forged.status_code == 401 and forged.json()["message"] == "Unauthenticated callback"
    assert len(warnings(caplog)) == 1
    assert genuine.status_code == 400 and "Malformed JSON body" in genuine.json()["message"]
    assert too_large.status_code == 413


@pytest.mark.anyio
async def test_the_url_given_to_authenticate_is_the_public_one_whatever_the_proxy_says():
    # A TLS-terminating proxy hands on its own Host and scheme; the carrier
    # signed the URL it called, which is public_url's.
    body = b'{"id": "1", "message": "hi"}'
    scope = {
        "type": "http", "method": "POST", "scheme": "http", "path": "/hooks/voip/inbound",
        "raw_path": b"/hooks/voip/inbound", "query_string": b"token=s3cret&a=%20b",
        "headers": [(b"host", b"10.0.0.7:8080"), (b"x-forwarded-host", b"elsewhere.example"),
                    (b"x-forwarded-proto", b"http"), (b"content-type", b"application/json"),
                    (b"x-signature", b"sig")],
        "server": ("10.0.0.7", 8080), "client": ("10.0.0.1", 5000), "root_path": "",
    }
    pieces = [{"type": "http.request", "body": body[:10], "more_body": True},
              {"type": "http.request", "body": body[10:], "more_body": False}]

    async def receive():
        return pieces.pop(0)

    config = Config(public_url="https://sms.example.com/base")
    webhook = await webhook_request(Request(scope, receive), "inbound", config)
    assert webhook.url == "https://sms.example.com/base/hooks/voip/inbound?token=s3cret&a=%20b"
    assert (webhook.kind, webhook.method, webhook.body) == ("inbound", "POST", body)
    assert webhook.headers["X-Signature"] == "sig"
    assert webhook.query == {"token": "s3cret", "a": " b"}
    assert webhook.fields == {"token": "s3cret", "a": " b", "id": "1", "message": "hi"}
