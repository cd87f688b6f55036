"""Account XML rendering and validation."""

import json

import pytest
from lxml import etree

import account_xml
from account_xml import AccountXmlError, ServiceUrls, unknown_variables, validate

URLS = ServiceUrls(send="https://h.example/acrobits/send?x=1&y=2",
                   fetch="https://h.example/acrobits/fetch")


def render(**overrides):
    fields = {"username": "alice", "display_name": "Alice & <Bob> \"Q\"", "urls": URLS}
    return account_xml.render(**{**fields, **overrides})


def test_render_parses_and_carries_every_messaging_key():
    root = etree.fromstring(render().encode())
    nodes = {child.tag: child.text for child in root if isinstance(child.tag, str)}
    assert root.tag == "account"
    assert nodes["title"].strip()
    assert nodes["username"] == "alice"
    assert nodes["userDisplayName"] == 'Alice & <Bob> "Q"'
    assert nodes["genericSmsSendUrl"] == URLS.send  # & escaped in the XML, intact once parsed
    assert nodes["genericSmsFetchUrl"] == URLS.fetch
    for key in ("genericSmsSendPostData", "genericSmsPostData", "genericSmsFetchPostData"):
        assert nodes[key].startswith("{") and "%account[password]%" in nodes[key]
    assert nodes["genericSmsSendPostData"] == nodes["genericSmsPostData"]
    for key in ("genericSmsContentType", "genericSmsSendContentType", "genericSmsFetchContentType"):
        assert nodes[key] == "application/json"
    assert "%sms_to%" in nodes["genericSmsSendPostData"]
    assert "%last_known_sent_sms_id%" in nodes["genericSmsFetchPostData"]


def test_title_defaults_to_the_name_and_can_be_set():
    assert "Alice" in etree.fromstring(render().encode()).findtext("title")
    assert etree.fromstring(render(title="Acme SMS").encode()).findtext("title") == "Acme SMS"


def test_unknown_variables_are_caught():
    assert unknown_variables("%sms_to% %account[anything]% %smsto%") == {"smsto"}
    with pytest.raises(AccountXmlError, match="smsto"):
        validate("<account><title>t</title><x>%smsto%</x></account>")


@pytest.mark.parametrize("document, problem", [
    ("<account><title> </title></account>", "empty <title>"),
    ("<accounts><title>t</title></accounts>", "not <account>"),
    ("<account><title>t</title>", "does not parse"),
])
def test_validation_errors(document, problem):
    with pytest.raises(AccountXmlError, match=problem):
        validate(document)


def test_entities_are_not_expanded():
    document = ('<!DOCTYPE account [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                "<account><title>&x;</title></account>")
    with pytest.raises(AccountXmlError):
        validate(document)


def test_push_token_and_account_removal_reporters_are_rendered_when_given():
    urls = ServiceUrls(send=URLS.send, fetch=URLS.fetch, push_token="https://h.example/acrobits/push-token",
                       account_removal="https://h.example/acrobits/account-removal")
    nodes = {c.tag: c.text for c in etree.fromstring(render(urls=urls).encode())
             if isinstance(c.tag, str)}
    assert nodes["pushTokenReporterUrl"] == urls.push_token
    assert nodes["accountRemovalReporterUrl"] == urls.account_removal
    for prefix in ("pushTokenReporter", "accountRemovalReporter"):
        assert nodes[f"{prefix}ContentType"] == "application/json"
        post_data = json.loads(nodes[f"{prefix}PostData"])  # JSON once the app fills it
        assert post_data["username"] == "%account[username]%"
        assert post_data["password"] == "%account[password]%"
        assert post_data["selector"] == "%selector%"
        assert post_data["device"] == "%installid%"
    reporter = json.loads(nodes["pushTokenReporterPostData"])
    for variable in ("pushTokenOther", "pushappid_other", "pushTokenIncomingCall",
                     "pushappid_incoming_call", "pushToken", "pushappid"):
        assert reporter[variable] == f"%{variable}%"
    without = {c.tag for c in etree.fromstring(render().encode())}
    assert "pushTokenReporterUrl" not in without and "accountRemovalReporterUrl" not in without
