"""One carrier callback as it arrived, for :meth:`Provider.authenticate`.

Carriers sign what they sent: the URL they called, and for some the raw
body (Twilio's and SignalWire's signatures cover the URL and the form
fields, Telnyx's the raw body). So the whole request is read, within
``max_request_bytes``, before anything is believed, and the URL is the one
the carrier called: ``public_url`` with the path and query, whatever Host a
TLS-terminating proxy in front handed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl, urlsplit

from ..web_requests import parse_fields


@dataclass(frozen=True)
class WebhookRequest:
    kind: str  # "inbound" or "status": which of our two URLs was called
    method: str
    url: str  # public_url + path + "?" + query, as the carrier called it
    headers: Mapping[str, str]  # looked up by lower-case name
    body: bytes  # as it arrived, for signatures over the body

    @cached_property
    def query(self) -> Mapping[str, str]:
        """The URL's query parameters (undecodable bytes replaced)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @cached_property
    def fields(self) -> Mapping[str, str]:
        """The query's fields overlaid by the body's (form or JSON); nested
        JSON values kept as JSON text. Parsed when first asked for, so a
        callback refused on its URL alone is refused however malformed its
        body: raises :class:`~adapter.web_requests.ServiceError` (400, 415)."""
        query_string = urlsplit(self.url).query.encode("latin-1")
        return parse_fields(self.method, query_string, self.headers.get("content-type", ""),
                            self.body, nested_as_json=True)
