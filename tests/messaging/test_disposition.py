"""Disposition receipts: what a receipt body the app sends reports as displayed."""

import json

import pytest

from adapter.messaging.disposition import displayed_ids


def test_the_displayed_message_ids_of_an_object_or_a_list():
    one = {"message-id": "a", "display-notification": {"status": "displayed"}}
    newer = {"message_id": "b", "display-notification": {"status": "displayed"}}
    delivered = {"message-id": "c", "delivery-notification": {"status": "delivered"}}
    assert displayed_ids(json.dumps(one)) == ("a",)
    assert displayed_ids(json.dumps([one, newer, delivered, one])) == ("a", "b")


@pytest.mark.parametrize("body", ["not json", "", "[" * 5000, '{"message-id": ' * 100_000,
                                  '{"message-id": 1' + "0" * 5000 + "}"])
def test_an_unreadable_receipt_reports_nothing(body):
    assert displayed_ids(body) == ()
