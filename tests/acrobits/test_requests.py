"""Reading service requests (GET, form, JSON) and writing answers (JSON, XML)."""

from __future__ import annotations

import io
import json
import logging
import re

import httpx2
import pytest
from lxml import etree

from adapter.acrobits.requests import answer
from adapter.logs import OneLineFormatter

from tests.app_client import ALICE, BOB, FETCH, SEND, make_user, texts, xml_answer
from tests.conftest import wait_for

TRANSPORTS = ["get", "form", "json"]
LIMIT = 256 * 1024  # max_request_bytes by default


@pytest.fixture
def alice(http, add_account, bob):
    """The sender; ``bob`` exists so that her messages have somewhere to go."""
    return make_user(http, add_account, "alice", ALICE)


def call(http: httpx2.Client, transport: str, fields: dict, path: str = SEND,
         headers: dict | None = None) -> httpx2.Response:
    """The same fields as a GET query, a form POST or a JSON POST."""
    if transport == "get":
        return http.get(path, params=fields, headers=headers)
    if transport == "form":
        return http.post(path, data=fields, headers=headers)
    return http.post(path, json=fields, headers=headers)


def post_raw(http: httpx2.Client, body: bytes | str, content_type: str,
             headers: dict | None = None) -> httpx2.Response:
    return http.post(SEND, content=body, headers={"Content-Type": content_type, **(headers or {})})


def send_fields(user, **extra) -> dict:
    return {**user.credentials, "to": BOB, "body": "hello", **extra}


def assert_error(response: httpx2.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["message"]
    assert isinstance(message, str) and message.strip()
    return message


# -- transports and spellings ---------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_transport_sends_and_fetches(http, alice, bob, transport):
    response = call(http, transport, send_fields(alice, body=f"via {transport}"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    sms_id = response.json()["sms_id"]
    fetched = call(http, transport, {**alice.credentials, "last_id": "", "last_sent_id": ""}, FETCH)
    assert fetched.status_code == 200
    [sent] = fetched.json()["sent_smss"]
    assert (sent["sms_id"], sent["sms_text"], sent["recipient"]) == (sms_id, f"via {transport}", BOB)
    assert texts(bob.received()) == [f"via {transport}"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("user_key", "to_key", "body_key"), [
    ("from", "to", "body"),
    ("username", "sms_to", "sms_body"),
    ("from", "sms_to", "body"),
    ("username", "to", "sms_body"),
])
def test_field_spellings(http, alice, bob, transport, user_key, to_key, body_key):
    fields = {user_key: "alice", "password": alice.password, to_key: BOB, body_key: "spelled",
              "content_type": "application/x-acro-filetransfer+json",
              "disposition_notification": "abc.def:positive-delivery, display"}
    response = call(http, transport, fields)
    assert response.status_code == 200, response.text
    [message] = bob.received()
    assert message["sms_text"] == "spelled"
    assert message["content_type"] == "application/x-acro-filetransfer+json"
    assert message["disposition_notification"] == "abc.def:positive-delivery, display"


def test_json_body_under_a_form_content_type(http, alice, bob):
    # What the app sends when the operator gave a JSON template but no ContentType.
    body = json.dumps(send_fields(alice, body="json as form"))
    response = post_raw(http, body, "application/x-www-form-urlencoded")
    assert response.status_code == 200, response.text
    assert texts(bob.received()) == ["json as form"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/json",
                                          "application/vnd.example+json"])
def test_json_media_type_variants(http, alice, bob, content_type):
    response = post_raw(http, json.dumps(send_fields(alice)), content_type)
    assert response.status_code == 200, response.text


def test_post_body_overrides_query_fields(http, alice, bob):
    response = http.post(SEND, params={"body": "from query", "to": "nonsense"},
                         json=send_fields(alice, body="from body"))
    assert response.status_code == 200, response.text
    assert texts(bob.received()) == ["from body"]


def test_json_scalars_become_text(http, alice, bob):
    response = http.post(SEND, json={**alice.credentials, "to": 12025550102, "body": 42,
                                     "content_type": None})
    assert response.status_code == 200, response.text
    [message] = bob.received()
    assert message["sms_text"] == "42"
    assert "content_type" not in message


@pytest.mark.parametrize("raw", ["line one\nline two", "tab\there", "cr\r\nlf"])
def test_raw_control_characters_inside_json_strings(http, alice, bob, raw):
    body = '{"username": "alice", "password": "%s", "to": "%s", "body": "%s"}' % (
        alice.password, BOB, raw)
    response = post_raw(http, body.encode(), "application/json")
    assert response.status_code == 200, response.text
    assert texts(bob.received()) == [raw]


# -- answer formats ---------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/xml", "text/xml", "text/xml; charset=utf-8"])
def test_xml_answer_when_accept_asks(http, alice, accept):
    response = call(http, "json", send_fields(alice), headers={"Accept": accept})
    assert response.status_code == 200
    answer = xml_answer(response)
    assert list(answer) == ["sms_id"] and answer["sms_id"].isdigit()
    assert alice.sent()[-1]["sms_id"] == answer["sms_id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("value", ["xml", "XML"])
def test_xml_answer_when_format_field_asks(http, alice, transport, value):
    response = call(http, transport, send_fields(alice, format=value))
    assert response.status_code == 200
    assert xml_answer(response)["sms_id"].isdigit()


@pytest.mark.parametrize(("fields", "headers"), [
    ({"format": "json"}, {"Accept": "application/xml"}),
    ({}, {"Accept": "application/json, application/xml"}),
    ({}, {"Accept": "*/*"}),
    ({}, {}),
])
def test_json_answer_otherwise(http, alice, fields, headers):
    response = call(http, "json", send_fields(alice, **fields), headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"sms_id"}


def test_errors_in_xml_when_xml_asked(http, alice):
    unauthorized = call(http, "get", send_fields(alice, password="wrong", format="xml"))
    assert unauthorized.status_code == 401
    assert xml_answer(unauthorized) == {"message": "Invalid username or password"}
    invalid = call(http, "form", send_fields(alice, to="bob"), headers={"Accept": "text/xml"})
    assert invalid.status_code == 400
    assert "bob" in xml_answer(invalid)["message"]
    malformed = post_raw(http, b'{"to": ', "application/json", headers={"Accept": "application/xml"})
    assert malformed.status_code == 400
    assert xml_answer(malformed)["message"].startswith("Malformed JSON")


def test_format_xml_in_the_query_also_shapes_body_errors(http):
    response = http.post(SEND, params={"format": "xml"}, content=b'{"to": ',
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert xml_answer(response)["message"].startswith("Malformed JSON")


def test_fetch_answers_json_even_when_xml_asked(http, alice):
    response = http.post(FETCH, json={**alice.credentials, "format": "xml"},
                         headers={"Accept": "application/xml"})
    assert response.status_code == 200
    assert set(response.json()) == {"date", "received_smss", "sent_smss"}


# -- malformed requests -------------------------------------------------------------


@pytest.mark.parametrize(("body", "words"), [
    (b'{"username": "alice", "to": ', "Malformed JSON"),
    (b'{"username": "alice",}', "Malformed JSON"),
    (b"[1, 2]", "must be an object"),
    (b'"just a string"', "must be an object"),
    (b'{"username": "alice", "body": {"text": "hi"}}', "body"),
    (b'{"username": "alice", "to": ["+12025550102"]}', "to"),
])
def test_malformed_json_is_400(http, alice, body, words):
    assert words in assert_error(post_raw(http, body, "application/json"), 400)


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"body": "caf\xe9"}', "application/json"),
    (b"body=caf\xe9&to=1", "application/x-www-form-urlencoded"),
    (b"body=caf%E9&to=1", "application/x-www-form-urlencoded"),
    (b'{"body": "\\ud800"}', "application/json"),
])
def test_invalid_utf8_body_is_400(http, alice, body, content_type):
    assert_error(post_raw(http, body, content_type), 400)


def test_invalid_utf8_query_is_400(http, alice):
    query = f"username=alice&password={alice.password}&to={BOB[1:]}&body=caf%E9"
    response = http.get(f"{SEND}?{query}")
    assert_error(response, 400)
    assert alice.sent() == []


@pytest.mark.parametrize("name", ["\ud800", "\x01", "\x00bad"])
def test_error_naming_a_hostile_field_is_still_an_answer(http, alice, name):
    # The message quotes the field name; it must survive JSON and XML encoding.
    body = json.dumps({name: {"nested": True}}).encode()
    assert_error(post_raw(http, body, "application/json"), 400)
    as_xml = post_raw(http, body, "application/json", headers={"Accept": "application/xml"})
    assert as_xml.status_code == 400
    assert "must be a string" in xml_answer(as_xml)["message"]


@pytest.mark.parametrize("content_type", ["text/csv", "text/plain", "application/xml",
                                          "multipart/form-data; boundary=xyz"])
def test_unsupported_content_type_is_415(http, alice, content_type):
    message = assert_error(post_raw(http, b"username,to\nalice,+12025550102\n", content_type), 415)
    assert content_type.split(";")[0] in message


def test_real_multipart_upload_is_415(http, alice):
    response = http.post(SEND, data=send_fields(alice), files={"file": ("a.txt", b"data")})
    assert_error(response, 415)
    assert alice.sent() == []


def test_oversized_body_with_content_length_is_413(http, alice):
    body = json.dumps(send_fields(alice, body="x" * (1024 * 1024))).encode()
    response = post_raw(http, body, "application/json")
    assert str(LIMIT) in assert_error(response, 413)
    assert alice.sent() == []


def test_oversized_chunked_body_is_413(http, alice):
    def chunks():
        yield json.dumps(send_fields(alice))[:-1].encode() + b', "pad": "'
        for _ in range(16):
            yield b"x" * 65536
        yield b'"}'

    response = http.post(SEND, content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413)
    assert alice.sent() == []


def test_body_just_under_the_limit_is_accepted(http, alice, bob):
    fields = send_fields(alice, body="")
    overhead = len(json.dumps(fields).encode())
    fields["body"] = "y" * (LIMIT - overhead)
    body = json.dumps(fields).encode()
    assert len(body) == LIMIT
    assert post_raw(http, body, "application/json").status_code == 200
    assert len(bob.received()[0]["sms_text"]) == LIMIT - overhead


# -- other paths ---------------------------------------------------------------------


def test_healthz(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/acrobits", "/acrobits/send/extra", "/nope?password=x"])
def test_unknown_paths_are_404_with_a_message(http, path):
    assert_error(http.get(path), 404)


def test_wrong_method_is_405_with_a_message(http):
    assert_error(http.put(SEND, content=b"x"), 405)
    assert_error(http.delete(FETCH), 405)


# -- access log -----------------------------------------------------------------------


class AccessLogOutput:
    """What the access log wrote so far, as `serve` writes it (adapter.logs)."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(OneLineFormatter())

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self, path: str) -> list[str]:
        return [line for line in self.text.splitlines() if " adapter.access: " in line and path in line]


@pytest.fixture
def access_log():
    logger = logging.getLogger("adapter.access")
    level, output = logger.level, AccessLogOutput()
    logger.setLevel(logging.INFO)  # as `serve` has it; the tests' root logger is at WARNING
    logger.addHandler(output.handler)
    yield output
    logger.removeHandler(output.handler)
    logger.setLevel(level)


@pytest.mark.parametrize("secret_key", ["password", "pass", "PassWord"])
def test_access_log_masks_passwords_in_the_query(http, alice, access_log, secret_key):
    secret = "s3cr3t p@ss/Zq9"
    fields = {"username": "alice", secret_key: secret, "to": BOB, "body": "logged"}
    assert http.get(SEND, params=fields).status_code == 401  # the wrong password, logged
    [line] = wait_for(lambda: access_log.lines(SEND), what="the access log line")
    assert f"{secret_key}=***" in line and "username=alice" in line and " 401 " in line
    for fragment in ("s3cr3t", "p%40ss", "p@ss", "Zq9"):
        assert fragment not in access_log.text


def test_access_log_masks_passwords_of_successful_sends(http, alice, access_log):
    response = http.get(SEND, params=send_fields(alice))
    assert response.status_code == 200
    [line] = wait_for(lambda: access_log.lines(SEND), what="the access log line")
    assert '"GET /acrobits/send?' in line and " 200 " in line
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO adapter.access: 127.0.0.1 ", line)
    assert alice.password not in access_log.text


def test_access_log_is_silenced_like_any_logger(http, alice, access_log):
    logger = logging.getLogger("adapter.access")
    logger.setLevel(logging.WARNING)
    try:
        assert http.get(SEND, params=send_fields(alice)).status_code == 200
        assert http.get("/healthz").status_code == 200
    finally:
        logger.setLevel(logging.INFO)
    assert http.get("/healthz?after=1").status_code == 200
    wait_for(lambda: access_log.lines("/healthz?after=1"), what="the access log line")
    assert access_log.lines(SEND) == [] and access_log.lines("/healthz ") == []


def test_xml_answers_replace_what_xml_cannot_hold():
    # The messages quote client text through repr(), which escapes all of
    # these; the answer must survive a message that does not.
    status, _, body = answer({"message": "a\x01b\ud800c\ufffed\U0001F600"}, as_xml=True, status=400)
    root = etree.fromstring(body)
    assert status == 400 and root.findtext("message") == "a\ufffdb\ufffdc\ufffdd\U0001F600"
