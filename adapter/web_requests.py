"""Reading an HTTP request's fields: the Acrobits services' and the carriers' callbacks.

Both are called as a GET with a query string, a form POST or a JSON POST;
all three become one flat ``{name: str}`` mapping here, the body bounded in
size and every value checked to be text. Problems are :class:`ServiceError`
(an HTTP status and a message for the caller).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import parse_qsl


class ServiceError(Exception):
    """An answer other than success: HTTP status plus the text the app shows."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Request(Protocol):
    """What reading a request needs; both the Acrobits services' own
    ServiceRequest and Starlette's Request (carrier webhooks) have it."""

    method: str
    scope: dict

    @property
    def headers(self) -> Mapping[str, str]: ...

    def stream(self): ...


class ClientGone(Exception):
    """The client disconnected before its request was read."""


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    # isascii: "²" is a digit to isdigit() but not to int(); a number that
    # long is over any limit (and int() refuses thousands of digits).
    if declared.isascii() and declared.isdigit() and (
            len(declared) > 18 or int(declared) > max_bytes):
        raise ServiceError(413, f"Request body is larger than {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ServiceError(413, f"Request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(media_type: str, body: bytes) -> bool:
    if media_type == "application/json" or media_type.endswith("+json") or media_type == "text/json":
        return True
    # The app sends a form content type when the operator left ContentType
    # out, even under a JSON PostData template; a form body never starts
    # with "{", so the body tells.
    form_or_none = media_type in ("", "application/x-www-form-urlencoded")
    return form_or_none and body.lstrip().startswith(b"{")


# strict=False: accept raw newlines and tabs inside strings, which an app
# substituting %sms_body% without escaping them would send. Built once:
# json.loads with an option builds a new decoder on every call.
_JSON_DECODER = json.JSONDecoder(strict=False)


def _parse_json(body: bytes, nested_as_json: bool = False) -> dict[str, str]:
    try:
        return _json_fields(_JSON_DECODER.decode(body.decode("utf-8")), nested_as_json)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceError(400, f"Malformed JSON body: {exc}") from None
    except ValueError:  # int() refusing a long number: Python's limit on digits
        raise ServiceError(400, "Malformed JSON body: a number has more than "
                                f"{sys.get_int_max_str_digits()} digits") from None
    except RecursionError:  # decoding (or re-encoding a nested value) past the stack's depth
        raise ServiceError(400, "Malformed JSON body: nested too deeply") from None


def _json_fields(data, nested_as_json: bool) -> dict[str, str]:
    if not isinstance(data, dict):
        raise ServiceError(400, "The JSON body must be an object")
    fields = {}
    for name, value in data.items():
        if isinstance(value, (dict, list)) and not nested_as_json:
            # {name!r}: the name is the client's text; repr keeps lone surrogates
            # and control characters out of the JSON or XML answer.
            raise ServiceError(400, f"Field {name!r} must be a string, not a JSON {type(value).__name__}")
        fields[name] = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    return fields


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(400, f"Malformed form body: {exc}") from None


def _parse_query(query_string: bytes) -> dict[str, str]:
    # Not request.query_params: Starlette decodes with errors="replace", which
    # would store U+FFFD in place of the text the caller meant.
    if not query_string:
        return {}
    try:
        return dict(parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise ServiceError(400, "The query string is not valid UTF-8") from None


def _check_unicode(fields: Mapping[str, str]) -> None:
    for name, value in fields.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ServiceError(400, f"Field {name!r} is not valid UTF-8 text") from None
        # No text the apps send contains NUL, and PostgreSQL cannot store it
        # (the insert would fail with a 500 after the checks passed).
        if "\x00" in value:
            raise ServiceError(400, f"Field {name!r} contains a NUL character")


async def read_fields(request: Request, max_bytes: int,
                      nested_as_json: bool = False) -> dict[str, str]:
    """Query parameters, overlaid by the POST body's fields when there is one."""
    body = await read_body(request, max_bytes) if request.method == "POST" else b""
    return parse_fields(request.method, request.scope.get("query_string", b""),
                        request.headers.get("content-type", ""), body, nested_as_json)


def parse_fields(method: str, query_string: bytes, content_type: str, body: bytes,
                 nested_as_json: bool = False) -> dict[str, str]:
    """The fields of a request already read: the query's, overlaid by the
    POST body's (JSON object or form).

    ``nested_as_json``: a JSON list or object value is kept as its JSON text
    (carrier callbacks, e.g. Aculab's ``msg_media`` list) instead of refused.
    """
    fields = _parse_query(query_string)
    if method == "POST" and body.strip():
        media_type = _media_type(content_type)
        if _is_json(media_type, body):
            fields.update(_parse_json(body, nested_as_json))
        elif media_type in ("application/x-www-form-urlencoded", ""):
            fields.update(_parse_form(body))
        else:
            raise ServiceError(
                415,
                f"Unsupported content type {media_type!r}: "
                "send application/json or application/x-www-form-urlencoded",
            )
    _check_unicode(fields)
    return fields


def lenient_query(request: Request) -> dict[str, str]:
    """The query's fields, undecodable bytes replaced; only for choosing the
    format of an answer before the request is read properly."""
    return dict(parse_qsl(request.scope.get("query_string", b"").decode("utf-8", "replace")))
