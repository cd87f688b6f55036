"""Account XML: renders ``templates/account.xml.j2`` and checks the result.

Used by ``python -m adapter account-xml`` and by any provisioning endpoint.
The rendered document is parsed back with lxml, and every ``%variable%`` in
it must be one the Acrobits apps substitute, so a typo in the template fails
here instead of on a user's phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from lxml import etree

# Installed: the wheel carries the templates inside this package.
# Checkout / editable install: they sit at the top of the project.
_TEMPLATE_DIRS = [Path(__file__).parent / "templates", Path(__file__).parent.parent / "templates"]
TEMPLATE_NAME = "account.xml.j2"

# What the apps fill in (ACROBITS.md); %account[NODE]% takes any node name.
KNOWN_VARIABLES = frozenset({
    "sms_to", "sms_body", "content_type", "disposition_notification", "smart",
    "last_known_sms_id", "last_known_sent_sms_id", "installid",
    "selector", "pushTokenOther", "pushappid_other", "pushTokenIncomingCall",
    "pushappid_incoming_call", "pushToken", "pushappid",
})
_VARIABLE = re.compile(r"%([A-Za-z_]\w*(?:\[[^\]%]+\])?)%")


class AccountXmlError(ValueError):
    """The rendered Account XML would not work in the app."""


@dataclass(frozen=True)
class ServiceUrls:
    send: str
    fetch: str
    # Without these the app reports no push tokens, so gets no message pushes.
    push_token: str | None = None
    account_removal: str | None = None


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader([str(d) for d in _TEMPLATE_DIRS]),
    autoescape=True,  # HTML escaping is valid XML escaping for text nodes
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def variables_in(text: str) -> set[str]:
    return set(_VARIABLE.findall(text))


def unknown_variables(text: str) -> set[str]:
    return {v for v in variables_in(text) if not v.startswith("account[") and v not in KNOWN_VARIABLES}


def validate(document: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(document.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise AccountXmlError(f"Account XML does not parse: {exc}") from None
    if root.tag != "account":
        raise AccountXmlError(f"Account XML root is <{root.tag}>, not <account>")
    if not (root.findtext("title") or "").strip():
        raise AccountXmlError("Account XML has an empty <title>")
    unknown = set()
    for node in root.iter(tag=etree.Element):
        unknown |= unknown_variables(node.text or "")
    if unknown:
        raise AccountXmlError(f"Account XML uses variables the app does not know: {sorted(unknown)}")
    return root


def render(*, username: str, display_name: str | None, urls: ServiceUrls, title: str | None = None) -> str:
    account = {"username": username, "display_name": display_name}
    document = _environment.get_template(TEMPLATE_NAME).render(
        account=account,
        urls=urls,
        title=title or f"{display_name or username} messaging",
    )
    validate(document)
    return document
