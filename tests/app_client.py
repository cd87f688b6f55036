"""Plain HTTP calls to the Send and Fetch services, as an app's templates make them.

Shared by the service tests: a :class:`User` is one account's credentials
against one live server, with shortcuts for the usual JSON requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx2
from lxml import etree

SEND = "/acrobits/send"
FETCH = "/acrobits/fetch"
FETCH_LEGACY = "/acrobits/fetch-legacy"

ALICE = "+12025550101"
BOB = "+12025550102"
CAROL = "+12025550103"
NOBODY = "+12025550199"  # a valid number no account holds

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class User:
    http: httpx2.Client
    username: str
    password: str
    number: str

    @property
    def credentials(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    def send(self, to: str, body: str, **fields: str) -> httpx2.Response:
        return self.http.post(SEND, json={**self.credentials, "to": to, "body": body, **fields})

    def send_ok(self, to: str, body: str, **fields: str) -> str:
        response = self.send(to, body, **fields)
        assert response.status_code == 200, response.text
        sms_id = response.json()["sms_id"]
        assert sms_id.isdigit(), sms_id
        return sms_id

    def fetch(self, last_id: str = "", last_sent_id: str = "", path: str = FETCH,
              **fields: str) -> dict:
        response = self.http.post(path, json={
            **self.credentials, "last_id": last_id, "last_sent_id": last_sent_id, **fields,
        })
        assert response.status_code == 200, response.text
        return response.json()

    def received(self, **fields: str) -> list[dict]:
        return self.fetch(**fields)["received_smss"]

    def sent(self, **fields: str) -> list[dict]:
        return self.fetch(**fields)["sent_smss"]


def make_user(http: httpx2.Client, add_account, username: str, number: str,
              **options: str) -> User:
    """Add the account through the CLI (``options``: e.g. ``provider``); its password
    is ``"<username>-secret"``."""
    password = f"{username}-secret"
    add_account(username, number, password=password, **options)
    return User(http, username, password, number)


def ids(items: list[dict]) -> list[int]:
    return [int(item["sms_id"]) for item in items]


def texts(items: list[dict]) -> list[str]:
    return [item["sms_text"] for item in items]


def xml_answer(response: httpx2.Response) -> dict[str, str]:
    """The children of an XML ``<response>`` answer, as ``{tag: text}``."""
    assert response.headers["content-type"].startswith("application/xml"), response.headers
    root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
    assert root.tag == "response"
    return {child.tag: child.text for child in root}
