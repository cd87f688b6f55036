"""Phone numbers: every notation the apps and operators use becomes one E.164 form."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.messaging.numbers import MAX_TEXT_LENGTH, UnusableNumber, to_e164
from tests.app_client import ALICE, BOB, make_user

US_NUMBER = "+12025550102"


@pytest.mark.parametrize("text", [
    "+12025550102", "+1 (202) 555-0102", "+1-202-555-0102", "+1.202.555.0102",
    "12025550102", "1 202 555 0102", "2025550102", "(202) 555-0102", "202-555-0102",
    "202.555.0102", "  2025550102\t\n", "++12025550102", "011 1 202 555 0102",
    "tel:+12025550102", "tel:+1-202-555-0102", "TEL:2025550102", "tel:+12025550102;phone-context=x",
    "sip:+12025550102@host", "sip:+12025550102@host;user=phone", "sips:+12025550102@host:5061",
    "SIP:12025550102@HOST", "sip:2025550102@pbx.example.com;transport=tls",
    "sip:+12025550102;user=phone@host", "%2B12025550102", "sip:%2B12025550102@host",
    "+12025550102@host", "2025550102@pbx.example.com", "<sip:+12025550102@host>",
    "٢٠٢٥٥٥٠١٠٢",  # Arabic-Indic digits
    "２０２５５５０１０２",  # full-width digits
])
def test_us_notations(text):
    assert to_e164(text) == US_NUMBER


@pytest.mark.parametrize(("text", "region", "e164"), [
    ("+44 20 7946 0958", "US", "+442079460958"),
    ("011 44 20 7946 0958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("07911 123456", "GB", "+447911123456"),
    ("00 1 202 555 0102", "GB", US_NUMBER),
    ("+1 202 555 0102", "GB", US_NUMBER),
    ("01 23 45 67 89", "FR", "+33123456789"),
    ("030 1234567", "DE", "+49301234567"),
    ("sip:+4930123456@host", "US", "+4930123456"),
])
def test_regions_and_international_numbers(text, region, e164):
    assert to_e164(text, region) == e164


@pytest.mark.parametrize("text", [
    "", "   ", "bob", "123", "+", "+1", "+1 202 555", "+1 202 555 01020", "tel:", "sip:",
    "sip:bob@example.com", "bob@example.com", "sip:@host", "abc123", "1" * 30, "+999 123",
    "no digits at all", "%", "tel:%2B",
])
def test_unusable_texts(text):
    with pytest.raises(UnusableNumber):
        to_e164(text)


@pytest.mark.parametrize(("text", "region"), [
    ("20255550102", "US"),  # a typo in the US, though +20 2555 0102 is valid in Egypt
    ("442079460958", "US"),  # a UK number written without "+"
    ("4930123456", "US"),
    ("2995550100", "US"),  # possible, but no such area code
    ("2025550102", "GB"),
])
def test_a_number_without_plus_is_read_in_the_default_region_only(text, region):
    with pytest.raises(UnusableNumber, match=f"not a valid number in {region}"):
        to_e164(text, region)


def test_unusable_is_a_value_error_that_names_the_text():
    with pytest.raises(ValueError, match="bob"):
        to_e164("bob")


@pytest.mark.parametrize("text", [
    " " * MAX_TEXT_LENGTH + US_NUMBER,
    f"sip:{US_NUMBER}@" + "h" * MAX_TEXT_LENGTH,
    US_NUMBER + ";" + "p" * MAX_TEXT_LENGTH,
])
def test_over_long_texts_are_unusable(text):
    # Each would parse, but holding such texts in the parse cache costs memory.
    with pytest.raises(UnusableNumber, match="too long"):
        to_e164(text)


def test_a_long_but_reasonable_sip_address_is_fine():
    assert to_e164(f"sip:{US_NUMBER}@" + "pbx." * 40 + "example.com;user=phone") == US_NUMBER


def test_the_result_is_stable():
    for text in ("(202) 555-0102", "tel:+442079460958"):
        once = to_e164(text)
        assert to_e164(once) == once
        assert to_e164(f"sip:{once}@host") == once


# -- properties over any North American number -----------------------------------------

area = st.integers(200, 999).filter(lambda n: n % 100 != 11)
exchange = st.integers(200, 999).filter(lambda n: n % 100 != 11)
line = st.integers(0, 9999)


def notations(a: int, e: int, n: int) -> list[str]:
    digits = f"{a}{e}{n:04d}"
    return [
        f"+1{digits}", f"1{digits}", digits, f"({a}) {e}-{n:04d}", f"{a}.{e}.{n:04d}",
        f"+1 {a} {e} {n:04d}", f"tel:+1-{a}-{e}-{n:04d}", f"sip:+1{digits}@host;user=phone",
        f"sip:{digits}@host", f"{digits}@host",
    ]


@given(area, exchange, line)
def test_every_notation_of_a_nanp_number_agrees(a, e, n):
    e164 = f"+1{a}{e}{n:04d}"
    if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
        assert {to_e164(text) for text in notations(a, e, n)} == {e164}
        return
    # Not in any assigned range: only the international notations are read.
    for text in notations(a, e, n):
        if "+" in text:
            assert to_e164(text) == e164
        else:
            with pytest.raises(UnusableNumber):
                to_e164(text)


@given(st.text(max_size=40))
def test_any_text_is_a_number_or_unusable(text):
    try:
        result = to_e164(text)
    except UnusableNumber:
        return
    assert result.startswith("+") and result[1:].isdigit() and 3 <= len(result) <= 16
    assert to_e164(result) == result


# -- over HTTP: the notation the app sends does not matter -----------------------------------


def test_the_app_may_address_a_user_in_any_notation(live_server, add_account):
    with live_server.client() as http:
        alice = make_user(http, add_account, "alice", "+1 202 555 0101")
        bob = make_user(http, add_account, "bob", "202-555-0102")
        for to in ("2025550102@pbx.example.com", "sip:%2B12025550102@pbx", "(202) 555-0102"):
            alice.send_ok(to, to)
        received = bob.received()
        assert [m["sms_text"] for m in received] == [
            "2025550102@pbx.example.com", "sip:%2B12025550102@pbx", "(202) 555-0102"]
        assert {m["stream_id"] for m in received} == {ALICE}
        assert {m["recipient"] for m in alice.sent()} == {BOB}
        refused = alice.send("x" * (MAX_TEXT_LENGTH + 1), "too long")
        assert refused.status_code == 400
        assert len(refused.json()["message"]) < 200
