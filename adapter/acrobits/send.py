"""Send Message: the app hands over one message for one recipient."""

from __future__ import annotations

from ..messaging import routing
from ..messaging.numbers import UnusableNumber
from .requests import ServiceError
from ..store import AccountGone
from .service import BAD_CREDENTIALS, Call, endpoint


@endpoint(xml=True)
async def send_message(call: Call) -> dict[str, str]:
    account = await call.account()
    to = call.field("to", "sms_to")
    body = call.field("body", "sms_body")
    if not to.strip():
        raise ServiceError(400, "Missing recipient: the request has no 'to' (or 'sms_to') field")
    if body == "":
        raise ServiceError(400, "Missing message: the request has no 'body' (or 'sms_body') field")
    try:
        message = routing.prepare(
            to=to,
            body=body,
            default_region=call.services.config.default_region,
            content_type=call.field("content_type"),
            disposition_notification=call.field("disposition_notification"),
            # Cut like Fetch's: an over-long name must not fail the insert.
            device=call.device(),
        )
    except UnusableNumber as problem:
        # Quote only the start: the app shows 100 characters, and the field may be long.
        raise ServiceError(400, f"Invalid recipient {to[:60]!r}: {problem.reason}") from None
    except routing.InvalidMessage as problem:
        raise ServiceError(400, str(problem)) from None
    try:
        stored = await call.services.router.send(account, message)
    except routing.Refused as refusal:
        raise ServiceError(403, str(refusal)) from None
    except routing.InvalidMessage as problem:
        raise ServiceError(400, str(problem)) from None
    except AccountGone:  # removed by the operator while this request ran
        raise ServiceError(401, BAD_CREDENTIALS) from None
    if stored is None:  # a receipt for a phone outside the service: nothing kept
        return {}
    # The app keeps its own copy under this id; fetch returns the same one.
    return {"sms_id": str(stored.sms_id)}
