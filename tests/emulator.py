"""An Acrobits app emulator that knows nothing but the Account XML.

It reads the service URLs, POST templates and content types from the XML and
substitutes ``%variables%`` the way the app does: URL-encoded inside URLs,
JSON-string-escaped inside JSON bodies, form-encoded inside form bodies. It
keeps its own message list and cursors like the app, and reports its push
tokens through the Push Token Reporter the XML names.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx2
from lxml import etree

_VARIABLE = re.compile(r"%([A-Za-z_]\w*(?:\[[^\]%]+\])?)%")


@dataclass
class AppEmulator:
    account_xml: str
    password: str
    installid: str
    received: dict[int, dict] = field(default_factory=dict)
    sent: dict[int, dict] = field(default_factory=dict)

    def __post_init__(self):
        root = etree.fromstring(self.account_xml.encode(), etree.XMLParser(resolve_entities=False))
        self.nodes = {child.tag: (child.text or "") for child in root if isinstance(child.tag, str)}
        self.http = httpx2.Client(timeout=10.0)

    def close(self) -> None:
        self.http.close()

    # -- substitution as the app does it ----------------------------------------
    def _value(self, name: str, variables: dict[str, str]) -> str:
        if name.startswith("account["):
            node = name[len("account["):-1]
            return self.password if node == "password" else self.nodes.get(node, "")
        return variables.get(name, "")

    def _fill(self, template: str, variables: dict[str, str], escape) -> str:
        return _VARIABLE.sub(lambda m: escape(self._value(m.group(1), variables)), template)

    def call(self, prefix: str, variables: dict[str, str],
             post_data_keys: tuple[str, ...] = ()) -> httpx2.Response:
        url = self._fill(self.nodes[f"{prefix}Url"], variables, lambda v: quote(v, safe=""))
        post_data = next((self.nodes[k] for k in (f"{prefix}PostData", *post_data_keys)
                          if k in self.nodes), None)
        if post_data is None:
            return self.http.get(url)
        content_type = self.nodes.get(f"{prefix}ContentType", "application/x-www-form-urlencoded")
        if "json" in content_type:
            body = self._fill(post_data, variables, lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
        else:
            body = self._fill(post_data, variables, lambda v: quote(v, safe=""))
        return self.http.post(url, content=body.encode(), headers={"Content-Type": content_type})

    # -- the app's two messaging actions ------------------------------------------
    def send(self, to: str, body: str, content_type: str = "",
             disposition_notification: str = "") -> str:
        response = self.call("genericSmsSend", {
            "sms_to": to, "sms_body": body, "content_type": content_type,
            "disposition_notification": disposition_notification, "installid": self.installid,
        }, post_data_keys=("genericSmsPostData",))
        assert response.status_code == 200, response.text
        sms_id = response.json()["sms_id"]
        # The app keeps its pending copy under the returned id.
        self.sent[int(sms_id)] = {"sms_id": sms_id, "recipient": to, "sms_text": body, "pending": True}
        return sms_id

    def fetch(self) -> dict:
        response = self.call("genericSmsFetch", {
            "last_known_sms_id": str(max(self.received, default="")),
            "last_known_sent_sms_id": str(max(self.sent, default="")),
            "installid": self.installid,
        })
        assert response.status_code == 200, response.text
        answer = response.json()
        for item in answer["received_smss"]:
            self.received[int(item["sms_id"])] = item
        for item in answer["sent_smss"]:
            self.sent[int(item["sms_id"])] = item
        return answer

    # -- push notifications -----------------------------------------------------
    @property
    def selector(self) -> str:
        """Like the app's %selector%: a SHA-1 with a suffix, one per account on
        this installation."""
        account = f"{self.installid}/{self.nodes.get('username', '')}".encode()
        digest = hashlib.sha1(account).hexdigest().upper()
        return f"{digest}:{digest[-8:]}"

    def report_push_token(self, token_other: str = "", appid_other: str = "",
                          token_call: str = "", appid_call: str = "", token: str = "",
                          appid: str = "") -> dict:
        """What the app does at every start (empty strings: not reported)."""
        response = self.call("pushTokenReporter", {
            "selector": self.selector, "installid": self.installid,
            "pushTokenOther": token_other, "pushappid_other": appid_other,
            "pushTokenIncomingCall": token_call, "pushappid_incoming_call": appid_call,
            "pushToken": token, "pushappid": appid,
        })
        assert response.status_code == 200, response.text
        return response.json()

    def report_account_removal(self) -> dict:
        response = self.call("accountRemovalReporter", {
            "selector": self.selector, "installid": self.installid})
        assert response.status_code == 200, response.text
        return response.json()

    def sync(self, max_rounds: int = 50) -> None:
        """Fetch until nothing new arrives, as the app does after a push."""
        for _ in range(max_rounds):
            answer = self.fetch()
            if not answer["received_smss"] and not answer["sent_smss"]:
                return
        raise AssertionError("fetch never drained")
