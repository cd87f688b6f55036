"""Reading an Acrobits web-service request and writing its answer.

The app fills operator-written templates, so one service may be called as a
GET with a query string, a form POST or a JSON POST; adapter.web_requests
makes all three one flat ``{name: str}`` mapping, and the field spellings
the templates use are read here. Answers are JSON unless the caller asks
for XML (``Accept`` or ``format=xml``); errors carry a ``message`` the app
shows to the user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from lxml import etree

# Reading requests is shared with the carriers' callbacks (adapter.hooks).
from ..web_requests import (  # noqa: F401  (the services import them from here)
    ClientGone, Request, ServiceError, lenient_query, read_fields,
)


def first(fields: Mapping[str, str], *names: str) -> str:
    """The value of the first of ``names`` that is filled in (the spellings
    in use); a template may carry several, some left empty."""
    for name in names:
        value = fields.get(name)
        if value:
            return value
    return ""


def wants_xml(request: Request, fields: Mapping[str, str]) -> bool:
    explicit = fields.get("format", "").strip().lower()
    if explicit:
        return explicit == "xml"
    accept = request.headers.get("accept", "").lower()
    return ("application/xml" in accept or "text/xml" in accept) and "json" not in accept


# What XML 1.0 cannot hold (lxml refuses it): control characters but tab,
# LF and CR; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(values: Mapping[str, str]) -> bytes:
    root = etree.Element("response")
    for name, value in values.items():
        etree.SubElement(root, name).text = _NOT_XML.sub("\ufffd", value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# As Starlette's JSONResponse writes it: UTF-8, no spaces, no NaN.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
JSON_TYPE = b"application/json"
XML_TYPE = b"application/xml"


def answer(values: Mapping, as_xml: bool, status: int = 200) -> tuple[int, bytes, bytes]:
    """(status, content type, body) of an answer carrying ``values``."""
    if as_xml:
        return status, XML_TYPE, _xml(values)
    return status, JSON_TYPE, _JSON.encode(values).encode("utf-8")


def error_answer(error: ServiceError, as_xml: bool) -> tuple[int, bytes, bytes]:
    return answer({"message": error.message}, as_xml, error.status)
