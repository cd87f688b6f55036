"""Fuzzing every endpoint in-process: no input gets a 5xx or lets an error
out of the app, every 4xx says why in a ``message``, and nothing already
stored is lost.

The app runs once per module and database engine, with its lifespan, and
requests go straight to it over ASGI (tests/asgi.py), raw bytes and all.
To fuzz more: add paths to the ``*_PATHS`` lists, names to ``FIELD_NAMES``,
awkward values to ``AWKWARD_VALUES``, or a body shape to ``bodies()``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from lxml import etree

from adapter.app import (
    ACCOUNT_REMOVAL_PATH, FETCH_LEGACY_PATH, FETCH_PATH, PUSH_TOKEN_PATH, SEND_PATH, create_app,
)
from adapter.config import load_config
from adapter.store import INBOUND, OUTBOUND, Store
from tests import postgresql
from tests.asgi import Answer, InProcess, Request, in_process
from tests.conftest import run_cli, selected_engines

# The app's dispatcher, in another thread, draws its retry jitter from the
# global random; Hypothesis notices that state change while it generates.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

SERVICE_PATHS = [SEND_PATH, FETCH_PATH, FETCH_LEGACY_PATH, PUSH_TOKEN_PATH, ACCOUNT_REMOVAL_PATH]
PROVIDERS = {  # name: the [providers.NAME] table (nothing is ever sent to base_url)
    "acu": {"type": "aculab", "username": "u", "api_key": "k"},
    "voip": {"type": "voipms", "api_username": "u", "api_password": "p"},
    "plum": {"type": "plum", "username": "u", "password": "p"},
}
HOOK_PATHS = [f"/hooks/{name}/{kind}" for name in PROVIDERS for kind in ("inbound", "status")]
OTHER_PATHS = ["/healthz", "/", "/healthz/", "/acrobits/send/", "/acrobits", "/hooks/nope/inbound",
               "/hooks//inbound", "/hooks/acu/other", "/%0a", "/\n2026-01-01 forged"]
SECRET = "fuzz-webhook-secret-0123456789abcdef"
PASSWORD = "fuzz password"
ACCOUNTS = {"alice": "+12025550101", "bob": "+12025550102", "carol": "+12025550103"}

FIELD_NAMES = [
    # Acrobits services (every spelling the readers take)
    "username", "from", "user", "password", "pass", "to", "sms_to", "body", "sms_body",
    "content_type", "disposition_notification", "device", "installid", "format", "last_id",
    "last_sent_id", "last_known_sms_id", "last_known_sent_sms_id", "selector",
    "pushTokenOther", "pushappid_other", "pushTokenIncomingCall", "pushappid_incoming_call",
    "pushToken", "pushappid", "token_msgs", "appid_msgs", "token_calls", "appid_calls",
    "token", "appid",
    # carrier callbacks
    "msg_ref", "content", "direction", "type", "msg_media", "multipart_uid", "multipart_pos",
    "multipart_count", "status", "aculab_msg_err", "id", "date", "message", "sms_message_id",
    "message_id", "sms_status", "error", "reason",
]
AWKWARD_VALUES = [
    "", " ", "0", "-1", "1e5", "²", "٣", "9" * 20, "+12025550102",
    "2025550102", "12025550101", "+1202555010", "tel:+12025550102", "%selector%", "xml", "json",
    "delivered", "failed (no route)", "queued", "sent", "cancelled", "receive", "send", "mms",
    "application/x-acro-disposition-notification", "application/x-acro-filetransfer+json",
    "text/plain", "abc:positive-delivery, display", "\x00", "\ud800", "\ufffe\uffff",
    "\r\n2026-01-01 00:00:00,000 INFO adapter: forged", "\x1b[31m", "\u2028", "STOP", "START",
    '{"message-id": "a", "display-notification": {"status": "displayed"}}',
]
# (piece, times): long values, built when drawn (their repr would be huge).
LONG_VALUES = [("1", 4301), ("7", 5000), ("x", 300), ("y", 2000), ("[", 3000),
               ('{"body": ', 3000), ("0", 5000)]


def pytest_generate_tests(metafunc):
    if "fuzz_engine" in metafunc.fixturenames:
        metafunc.parametrize("fuzz_engine", selected_engines(metafunc.config), scope="module")


@dataclass
class Fuzzed:
    adapter: InProcess
    errors: list[logging.LogRecord]
    store: Store  # a Store of its own on the app's database, in the app's event loop

    def call(self, request: Request) -> Answer:
        self.errors.clear()
        answer = self.adapter.call(request)
        errors = [record.getMessage() for record in self.errors]
        check(request, answer)
        assert not errors, errors
        return answer

    def stored(self) -> set[tuple]:
        """Every account's messages: (account, direction, sms_id, text)."""
        return self.adapter.run(_stored, self.store)


async def _stored(store: Store) -> set[tuple]:
    found = set()
    for username in ACCOUNTS:
        account = await store.account(username)
        pages = await store.fetch(account.id, None, {INBOUND: 0, OUTBOUND: 0}, 10_000)
        found |= {(username, direction, m.sms_id, m.body)
                  for direction, page in pages.items() for m in page}
    return found


class ErrorRecords(logging.Handler):
    def __init__(self, records: list):
        super().__init__(logging.ERROR)
        self.records = records

    def emit(self, record):
        self.records.append(record)


def message_of(answer: Answer) -> str:
    content_type = answer.headers.get("content-type", "")
    if content_type.startswith("application/xml"):
        root = etree.fromstring(answer.body, etree.XMLParser(resolve_entities=False))
        return root.findtext("message")
    assert content_type.startswith("application/json"), answer
    return answer.json()["message"]


def check(request: Request, answer: Answer) -> None:
    if request.disconnect:  # nobody reads the answer, if there is one
        assert answer.status is None or answer.status < 500, answer
        return
    assert answer.status is not None, "the app sent no answer"
    assert answer.status < 500, answer
    if answer.status >= 400:
        message = message_of(answer)
        assert isinstance(message, str) and message.strip(), answer


@pytest.fixture(scope="module")
def fuzzed(fuzz_engine, tmp_path_factory) -> Iterator[Fuzzed]:
    with _database(fuzz_engine, tmp_path_factory.mktemp("fuzz")) as database_url:
        config_file = tmp_path_factory.mktemp("fuzz-config") / "adapter.toml"
        tables = "".join(
            f"[providers.{name}]\n"
            + "".join(f'{key} = "{value}"\n' for key, value in table.items())
            + f'base_url = "http://127.0.0.1:1"\nsecret = "{SECRET}"\n'
            for name, table in PROVIDERS.items())
        config_file.write_text(
            f'database_url = "{database_url}"\n'
            "[push]\nurl = \"http://127.0.0.1:1/push\"\n" + tables)
        for username, number in ACCOUNTS.items():
            provider = ["--provider", "voip"] if username == "carol" else []
            assert run_cli(config_file, "account", "add", username, "--number", number,
                           "--password", PASSWORD, *provider) == 0
        errors: list[logging.LogRecord] = []
        handler = ErrorRecords(errors)
        logging.getLogger().addHandler(handler)
        try:
            with in_process(create_app(load_config(str(config_file), environ={}))) as adapter:
                fuzzed = Fuzzed(adapter, errors, Store(database_url))
                _seed(fuzzed)
                yield fuzzed
                adapter.run(fuzzed.store.close)
        finally:
            logging.getLogger().removeHandler(handler)


def _database(engine: str, directory: Path):
    if engine == "postgresql":
        return postgresql.fresh_database()
    return contextlib.nullcontext(f"sqlite:///{directory}/adapter.sqlite3")


def json_post(path: str, fields: dict, query: bytes = b"") -> Request:
    return Request("POST", path, query, [(b"content-type", b"application/json")],
                   [json.dumps(fields).encode()])


def credentials(username: str = "alice") -> dict[str, str]:
    return {"username": username, "password": PASSWORD}


def _seed(fuzzed: Fuzzed) -> None:
    """Messages and a push token stored before any fuzzing, to check nothing is lost."""
    for text in ("first", "second"):
        answer = fuzzed.call(json_post(SEND_PATH, {**credentials(), "to": ACCOUNTS["bob"],
                                                   "body": text}))
        assert answer.status == 200, answer
    answer = fuzzed.call(json_post(PUSH_TOKEN_PATH, {
        **credentials("bob"), "selector": "bob-phone", "pushTokenOther": "tok",
        "pushappid_other": "app"}))
    assert answer.status == 200, answer
    answer = fuzzed.call(Request("POST", "/hooks/voip/inbound", f"token={SECRET}".encode(),
                                 [(b"content-type", b"application/x-www-form-urlencoded")],
                                 [urlencode({"id": "seed-1", "from": "2025550199",
                                             "to": "2025550103", "message": "in"}).encode()]))
    assert answer.status == 200, answer


@pytest.fixture
def fuzz(fuzzed) -> Iterator[Fuzzed]:
    """The fuzzed app; after the test, everything stored before it is still there."""
    before = fuzzed.stored()
    yield fuzzed
    assert before <= fuzzed.stored()


# -- strategies ------------------------------------------------------------------------
# Weighted by repeating entries: most requests should get past the cheap
# refusals (wrong method, no secret) to where the parsing happens.

texts = st.text(max_size=40)
field_names = st.one_of(st.sampled_from(FIELD_NAMES), texts)
field_values = st.one_of(st.sampled_from(AWKWARD_VALUES), texts,
                         st.sampled_from(LONG_VALUES).map(lambda long: long[0] * long[1]))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), field_values)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(field_names, inner, max_size=3)), max_leaves=8)
methods = st.sampled_from(["GET"] * 3 + ["POST"] * 6 + ["HEAD", "PUT", "DELETE", "OPTIONS", "*"]
                          ).flatmap(lambda method: st.just(method) if method != "*" else
                                    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=8))
a_secret = st.sampled_from([{"token": SECRET}] * 4 + [{"token": "wrong"}, {}, {"TOKEN": SECRET}])
credential_sets = st.sampled_from([
    # Valid credentials, or ones refused before a password is hashed; a wrong
    # password costs an argon2 run (0.2 s), so those are @examples.
    credentials("alice"), credentials("bob"), credentials("carol"), credentials("alice"),
    {}, {"username": "alice"}, {"password": PASSWORD}])
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "text/json",
              "application/x+json", "", "application/x-www-form-urlencoded"]
FORM_TYPES = ["application/x-www-form-urlencoded", "", "application/x-www-form-urlencoded; x=y"]
OTHER_TYPES = ["text/plain", "application/xml", "multipart/form-data; boundary=x", "\x7f;",
               "application/json;" + "x" * 1000, "APPLICATION/JSON"]
headers_of_any_kind = st.lists(st.tuples(
    st.sampled_from([b"accept", b"content-length", b"authorization", b"host", b"x-forwarded-for",
                     b"expect", b"transfer-encoding", b"cookie", b"connection", b"upgrade"]),
    st.one_of(st.sampled_from([b"application/xml", b"text/xml", b"*/*", b"\xb2", b"9" * 5000,
                               b"Basic !!!", b"Basic YWN1Ondyb25n", b"[", b"100-continue",
                               b"chunked", b"websocket", b"upgrade"]),
              st.binary(max_size=30))), max_size=3)


def plausible(template: dict[str, str]) -> st.SearchStrategy[dict]:
    """``template``'s fields, each kept, dropped or given an awkward value."""
    return st.fixed_dictionaries({}, optional={
        name: st.one_of(st.just(value), field_values) for name, value in template.items()})


SERVICE_TEMPLATES = {
    SEND_PATH: {"to": ACCOUNTS["bob"], "body": "hi", "content_type": "", "device": "d1",
                "disposition_notification": "m1:positive-delivery,display"},
    FETCH_PATH: {"last_id": "1", "last_sent_id": "1", "device": "d1"},
    FETCH_LEGACY_PATH: {"last_known_sms_id": "1", "device": "d1"},
    PUSH_TOKEN_PATH: {"selector": "s1", "pushTokenOther": "t", "pushappid_other": "a",
                      "pushToken": "t", "pushappid": "a", "device": "d1"},
    ACCOUNT_REMOVAL_PATH: {"selector": "s1"},
}
HOOK_TEMPLATES = {  # what each carrier sends, to carol's number (she is on voip)
    "/hooks/acu/inbound": {"msg_ref": "r1", "from": "12025550199", "to": "12025550103",
                           "content": "hi", "multipart_uid": "g", "multipart_pos": "1",
                           "multipart_count": "2"},
    "/hooks/acu/status": {"msg_ref": "r1", "status": "delivered", "aculab_msg_err": "2"},
    "/hooks/voip/inbound": {"id": "v1", "from": "2025550199", "to": "2025550103",
                            "message": "hi", "date": "2026-01-01 00:00:00"},
    "/hooks/voip/status": {"id": "v1"},
    "/hooks/plum/inbound": {"sms_message_id": "p1", "from": "+12025550199",
                            "to": "+12025550103", "body": "hi"},
    "/hooks/plum/status": {"sms_message_id": "p1", "status": "failed", "error": "opted out"},
}


@st.composite
def deep_json(draw) -> bytes:
    depth = draw(st.integers(100, 20_000))
    opener = draw(st.sampled_from(["[", '{"a":', '{"body": [']))
    return (draw(st.sampled_from(['{"body": ', ""])) + opener * depth).encode()


@st.composite
def bodies(draw, fields: dict) -> tuple[str, bytes]:
    """(content type, body): the fields in some encoding, or something else entirely."""
    kind = draw(st.sampled_from(["json"] * 3 + ["form"] * 2 + ["value", "deep", "number",
                                                                "bytes", "none"]))
    if kind == "form":
        body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
        return draw(st.sampled_from(FORM_TYPES + OTHER_TYPES[:1])), body
    if kind == "bytes":
        return draw(st.sampled_from(JSON_TYPES + OTHER_TYPES)), draw(st.binary(max_size=200))
    if kind == "none":
        return draw(st.sampled_from(JSON_TYPES + OTHER_TYPES)), b""
    if kind == "json":
        body = json.dumps(fields, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    elif kind == "value":
        body = json.dumps(draw(json_values)).encode("utf-8", "surrogatepass")
    elif kind == "deep":
        body = draw(deep_json())
    else:
        name = draw(st.sampled_from(["to", "body", "last_id", "multipart_pos"]))
        body = json.dumps(fields)[:-1].encode() + f', "{name}": 1{"0" * 5000}}}'.encode()
    return draw(st.sampled_from(JSON_TYPES * 3 + OTHER_TYPES)), body


def query_of(fields: dict) -> bytes:
    return urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()


@st.composite
def requests(draw, paths, base_fields=st.just({}), extra_query=st.just({})) -> Request:
    """A request to one of ``paths``: its template's fields (``*_TEMPLATES``),
    mutated, with ``base_fields`` (e.g. credentials) and made-up ones, in the
    query or the body; ``extra_query`` goes in the query; everything else is
    made up too."""
    path, method = draw(paths), draw(methods)
    template = {**SERVICE_TEMPLATES, **HOOK_TEMPLATES}.get(path, {})
    made_up = st.dictionaries(field_names, field_values, max_size=4)
    mixed = {**draw(base_fields), **draw(plausible(template)), **draw(made_up)}
    in_query = method != "POST" or draw(st.booleans())
    query = query_of({**draw(extra_query), **(mixed if in_query else {})})
    query += draw(st.sampled_from([b""] * 3 + [b"&"])) and b"&" + draw(st.binary(max_size=40))
    content_type, body = draw(bodies({} if in_query else mixed))
    headers = [(b"content-type", content_type.encode("latin-1")), *draw(headers_of_any_kind)]
    cut = draw(st.integers(0, len(body)))
    return Request(method, path, query, headers, [body[:cut], body[cut:]],
                   disconnect=draw(st.sampled_from([False] * 5 + [True])))


FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


# -- what the fuzzer found, as plain regressions -------------------------------------


@pytest.mark.parametrize("path", SERVICE_PATHS + HOOK_PATHS)
@pytest.mark.parametrize("body", [b"[" * 5000, b'{"body": ' + b"[" * 100_000, b'{"a":' * 5000])
def test_deeply_nested_json_is_400(fuzz, path, body):
    query = f"token={SECRET}".encode() if path.startswith("/hooks/") else b""
    answer = fuzz.call(Request("POST", path, query, [(b"content-type", b"application/json")],
                               [body]))
    assert answer.status == 400
    assert "nested" in message_of(answer)


@pytest.mark.parametrize("path", SERVICE_PATHS)
def test_a_5000_digit_json_number_is_400_in_plain_words(fuzz, path):
    body = json.dumps(credentials())[:-1].encode() + b', "to": 1' + b"0" * 5000 + b"}"
    answer = fuzz.call(Request("POST", path, b"", [(b"content-type", b"application/json")],
                               [body]))
    assert answer.status == 400
    message = message_of(answer)
    assert "number" in message and "digits" in message
    assert "sys." not in message and "int_max_str_digits" not in message


FETCHES = [(FETCH_PATH, "last_id", "received_smss"),
           (FETCH_LEGACY_PATH, "last_known_sms_id", "unread_smss")]


def received_after(fuzz, cursor: str, fetch: tuple[str, str, str]) -> list[str]:
    path, field, listing = fetch
    answer = fuzz.call(json_post(path, {**credentials("bob"), field: cursor}))
    assert answer.status == 200, answer
    return [m["sms_text"] for m in answer.json()[listing]]


@pytest.mark.parametrize("cursor", ["1" * 4301, "9" * 20])
@pytest.mark.parametrize("fetch", FETCHES)
def test_a_cursor_too_large_for_an_id_gets_the_recent_window(fuzz, cursor, fetch):
    recent_window = received_after(fuzz, "", fetch)
    assert "first" in recent_window
    assert received_after(fuzz, cursor, fetch) == recent_window


@pytest.mark.parametrize("fetch", FETCHES)
def test_a_cursor_with_thousands_of_leading_zeros_is_the_id(fuzz, fetch):
    assert received_after(fuzz, "0" * 5000 + "1", fetch) == received_after(fuzz, "1", fetch)


@pytest.mark.parametrize("value", [b"\xb2", b"9" * 5000])
def test_an_unreadable_content_length_is_no_500(fuzz, value):
    request = json_post(SEND_PATH, {**credentials(), "to": ACCOUNTS["bob"], "body": "hi"})
    headers = [*request.headers, (b"content-length", value)]
    answer = fuzz.call(Request("POST", SEND_PATH, b"", headers, request.chunks))
    assert answer.status in (200, 413)


@pytest.mark.parametrize("path", SERVICE_PATHS + HOOK_PATHS)
def test_a_client_gone_before_its_body_ended_is_no_error(fuzz, path):
    query = f"token={SECRET}".encode() if path.startswith("/hooks/") else b""
    request = Request("POST", path, query, [(b"content-type", b"application/json")],
                      [b'{"username": "al'], disconnect=True)
    fuzz.call(request)  # check(): no exception, no 5xx, nothing logged as an error


@pytest.mark.parametrize("content_type", ["application/x-acro-disposition-notification",
                                          "application/x-acro-filetransfer+json"])
def test_a_message_nested_too_deeply_to_read_is_still_sent(fuzz, content_type):
    # Send reads a receipt's message-ids; the push reads an attachment's caption.
    answer = fuzz.call(json_post(SEND_PATH, {**credentials(), "to": ACCOUNTS["bob"],
                                             "body": "[" * 5000, "content_type": content_type}))
    assert answer.status == 200, answer


@pytest.mark.parametrize("name", ["\x01", "\ud800", "\ufffe", "\x00"])
def test_xml_answers_hold_any_message(fuzz, name):
    body = json.dumps({name: {"nested": True}}).encode()
    answer = fuzz.call(Request("POST", SEND_PATH, b"format=xml",
                               [(b"content-type", b"application/json")], [body]))
    assert answer.status == 400
    assert "must be a string" in message_of(answer)


# -- the fuzzers -------------------------------------------------------------------------


@FUZZ
@given(request=requests(st.sampled_from(SERVICE_PATHS), base_fields=credential_sets))
@example(request=json_post(SEND_PATH, {"username": "alice", "password": "wrong", "to": "1"}))
@example(request=Request("GET", FETCH_PATH, b"username=nobody&password=x&last_id=" + b"1" * 4301))
def test_acrobits_services(fuzz, request):
    fuzz.call(request)


@FUZZ
@given(request=requests(st.sampled_from(HOOK_PATHS), extra_query=a_secret))
@example(request=Request("POST", "/hooks/acu/status", b"", [
    (b"authorization", b"Basic YWN1OmZ1enotd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="),
    (b"content-type", b"application/json")], [b'{"msg_ref": "r", "status": "delivered"}']))
def test_carrier_hooks(fuzz, request):
    fuzz.call(request)


@FUZZ
@given(request=requests(st.one_of(st.sampled_from(OTHER_PATHS + SERVICE_PATHS + HOOK_PATHS),
                                  st.text(max_size=30).map(lambda path: "/" + path))))
def test_any_path_and_method(fuzz, request):
    fuzz.call(request)
