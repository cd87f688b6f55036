"""The whole callback as providers authenticate it (adapter/providers/webhook.py)."""

from __future__ import annotations

import base64

import pytest
from starlette.datastructures import Headers

from adapter.providers import HookUrls, WebhookRequest
from adapter.providers.aculab import AculabProvider, AculabSettings
from adapter.web_requests import ServiceError

URL = "https://sms.example.com/hooks/acu/status"


def callback(kind: str = "status", query: str = "", body: bytes = b"",
             **headers: str) -> WebhookRequest:
    return WebhookRequest(kind=kind, method="POST", url=URL + (f"?{query}" if query else ""),
                          headers=Headers({name.replace("_", "-"): value
                                           for name, value in headers.items()}), body=body)


def test_fields_overlay_the_query_with_the_body():
    request = callback(query="token=t&id=1", body=b"id=2&text=hi",
                       content_type="application/x-www-form-urlencoded")
    assert request.query == {"token": "t", "id": "1"}
    assert request.fields == {"token": "t", "id": "2", "text": "hi"}


def test_a_malformed_body_is_refused_only_when_its_fields_are_asked_for():
    request = callback(query="token=t", body=b"{not json", content_type="application/json")
    assert request.query["token"] == "t"  # what authenticating by token needs
    with pytest.raises(ServiceError) as error:
        request.fields
    assert error.value.status == 400


def aculab() -> AculabProvider:
    return AculabProvider(name="acu", settings=AculabSettings(username="u", api_key="k"),
                          http=None, hooks=HookUrls("", "", "s3cret"))


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_by_default_the_token_in_the_url_authenticates():
    provider = aculab()
    assert provider.authenticate(callback("inbound", "token=s3cret"))
    assert not provider.authenticate(callback("inbound", "token=s3cre"))
    assert not provider.authenticate(callback("inbound", "token="))
    assert not provider.authenticate(callback("inbound", body=b"token=s3cret",
                                              content_type="application/x-www-form-urlencoded"))


def test_aculab_status_callbacks_may_carry_the_secret_as_basic_auth():
    provider = aculab()
    assert provider.authenticate(callback("status", authorization=basic("acu", "s3cret")))
    assert not provider.authenticate(callback("status", authorization=basic("acu", "guess")))
    assert not provider.authenticate(callback("status", authorization=basic("other", "s3cret")))
    # The inbound URL is pasted in the portal: only its token counts there.
    assert not provider.authenticate(callback("inbound", authorization=basic("acu", "s3cret")))
