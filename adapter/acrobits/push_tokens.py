"""Push Token Reporter and Account Removal Reporter (ACROBITS.md 3a).

The app reports its push tokens at every start, and says when the account
is removed from it. Both carry ``%selector%``, which names the account on
that device; the adapter keeps one registration per selector.
"""

from __future__ import annotations

from ..store import Registration, TokenPair
from .requests import ServiceError
from .service import Call, endpoint

MAX_TOKEN_LENGTH = 1024  # the store's column; real tokens are a few hundred characters
MAX_FIELD_LENGTH = 255

# Field names: the generated Account XML uses the app's own variable names;
# the others are spellings operators use in hand-written templates.
SELECTOR = ("selector",)
OTHER = (("pushTokenOther", "push_token_other", "token_other", "token_msgs"),
         ("pushappid_other", "push_appid_other", "appid_other", "appid_msgs"))
CALL = (("pushTokenIncomingCall", "push_token_incoming_call", "token_calls"),
        ("pushappid_incoming_call", "push_appid_incoming_call", "appid_calls"))
LEGACY = (("pushToken", "push_token", "token"), ("pushappid", "push_appid", "appid", "app_id"))


def _value(call: Call, names: tuple[str, ...], limit: int) -> str:
    value = call.field(*names).strip()
    if value.startswith("%") and value.endswith("%"):
        # A variable the app did not substitute (an app too old to know it):
        # nothing was reported.
        return ""
    if len(value) > limit:
        raise ServiceError(400, f"Field {names[0]!r} is longer than {limit} characters")
    return value


def _pair(call: Call, names: tuple[tuple[str, ...], tuple[str, ...]]) -> TokenPair | None:
    """A token and its app id, or None unless both were reported (apps report
    empty tokens now and then; a push needs both)."""
    token = _value(call, names[0], MAX_TOKEN_LENGTH)
    app_id = _value(call, names[1], MAX_FIELD_LENGTH)
    return TokenPair(token, app_id) if token and app_id else None


def _selector(call: Call) -> str:
    selector = _value(call, SELECTOR, MAX_FIELD_LENGTH)
    if not selector:
        raise ServiceError(400, "Missing selector: the request has no 'selector' field "
                                "(%selector% in the template)")
    return selector


@endpoint(xml=False)
async def report_push_token(call: Call) -> dict:
    account = await call.account()
    registration = Registration(
        selector=_selector(call), device=call.device(),
        other=_pair(call, OTHER), call=_pair(call, CALL), legacy=_pair(call, LEGACY))
    stored = await call.services.store.report_push_token(account.id, registration)
    # The app ignores the answer; it tells an operator testing a template by
    # hand which pairs arrived.
    return {"selector": registration.selector, "stored": stored}


@endpoint(xml=False)
async def report_account_removal(call: Call) -> dict:
    account = await call.account()
    selector = _selector(call)
    removed = await call.services.store.remove_push_token(account.id, selector)
    return {"selector": selector, "removed": removed}
