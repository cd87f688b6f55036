"""The delivery state machine and what a sender learns, without a database."""

from __future__ import annotations

import json
from itertools import permutations

import pytest

from adapter.messaging.disposition import RECEIPT_CONTENT_TYPE
from adapter.messaging.status import (
    DELIVERED, FAILED, FINAL, QUEUED, SENT, SUBMITTED, FollowUp, advances, failure_notice,
    follow_ups, overall,
)
from adapter.store import StoredMessage

IN_ORDER = [QUEUED, SUBMITTED, SENT, DELIVERED]


def sent(body="hello", disposition_notification="") -> StoredMessage:
    return StoredMessage(id=1, account_id=2, sms_id=3, local_number="+12025550101",
                         peer="+12025550199", body=body, content_type="",
                         disposition_notification=disposition_notification, state=QUEUED)


def test_states_move_forward_only():
    for earlier, later in zip(IN_ORDER, IN_ORDER[1:]):
        assert advances(earlier, later)
        assert not advances(later, earlier)  # a late, lower report is ignored
        assert not advances(later, later)  # so is a repeat
    assert advances(QUEUED, DELIVERED) and advances(SENT, FAILED)


@pytest.mark.parametrize("final", sorted(FINAL))
def test_final_states_never_change(final):
    assert {DELIVERED, FAILED} == FINAL
    for state in [*IN_ORDER, FAILED]:
        assert not advances(final, state)


def test_unknown_states_never_move_anything():
    assert not advances(SENT, "expired")
    assert advances("nonsense", SUBMITTED)  # (an unknown stored state is behind every known)


def test_a_message_is_where_its_parts_agree():
    assert overall([DELIVERED, SENT, DELIVERED]) == SENT  # the least advanced part
    assert overall([SUBMITTED]) == SUBMITTED
    for parts in permutations([DELIVERED, FAILED, SENT]):
        assert overall(parts) == FAILED  # any failed part fails the message


def test_a_failure_tells_the_sender_in_the_thread():
    assert follow_ups(sent("see you at 8"), FAILED, "number unreachable") == [
        FollowUp("⚠️ Not delivered: \u201csee you at 8\u201d: number unreachable")]
    assert failure_notice("x" * 100, "") == "⚠️ Not delivered: \u201c" + "x" * 59 + "…\u201d"


def test_delivery_is_receipted_only_when_the_app_asked_for_it():
    [receipt] = follow_ups(sent(disposition_notification="m-7:positive-delivery,display"),
                           DELIVERED, "")
    assert receipt.content_type == RECEIPT_CONTENT_TYPE
    body = json.loads(receipt.body)
    assert body["message-id"] == "m-7" and body["delivery-notification"]["status"] == "delivered"
    assert follow_ups(sent(disposition_notification="m-7:display"), DELIVERED, "") == []
    assert follow_ups(sent(), DELIVERED, "") == []
    assert follow_ups(sent(), SENT, "") == follow_ups(sent(), SUBMITTED, "") == []
