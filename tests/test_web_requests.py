"""Reading a request's fields (adapter/web_requests.py); over HTTP in tests/acrobits/test_requests.py."""

from __future__ import annotations

import pytest

from adapter.web_requests import ServiceError, parse_fields

FORM = "application/x-www-form-urlencoded"


def test_the_body_overlays_the_query_for_posts_only():
    assert parse_fields("POST", b"a=1&b=2", FORM, b"b=3") == {"a": "1", "b": "3"}
    assert parse_fields("POST", b"a=1", "application/json; charset=utf-8",
                        b'{"b": null, "c": 4}') == {"a": "1", "b": "", "c": "4"}
    assert parse_fields("GET", b"a=1", FORM, b"a=2") == {"a": "1"}


def test_nested_json_is_kept_as_text_only_when_asked():
    body = b'{"media": ["https://x.example/1"]}'
    assert parse_fields("POST", b"", "application/json", body, nested_as_json=True) == {
        "media": '["https://x.example/1"]'}
    with pytest.raises(ServiceError) as error:
        parse_fields("POST", b"", "application/json", body)
    assert error.value.status == 400


@pytest.mark.parametrize("query, content_type, body, status", [
    (b"", "text/plain", b"hello", 415),
    (b"a=%ff", FORM, b"", 400),
    (b"", FORM, b"a=%00", 400),
    (b"", "application/json", b"[1]", 400),
])
def test_what_cannot_be_read_is_a_4xx(query, content_type, body, status):
    with pytest.raises(ServiceError) as error:
        parse_fields("POST", query, content_type, body)
    assert error.value.status == status and error.value.message
