"""What a NotifyTextMessage says about one received message."""

import json

from adapter.push.notification import GENERIC_TEXT, PREVIEW_LENGTH, notify_text_message, preview_text
from adapter.store import StoredMessage
from tests.push.fake_push import notification_problems

RECEIPT = "application/x-acro-disposition-notification"
FILE_TRANSFER = "application/x-acro-filetransfer+json"


def push(body="Hi Bob", content_type="", display_name="Alice", preview=True, badge=3):
    message = StoredMessage(id=7, account_id=1, sms_id=42, local_number="+12025550102",
                            peer="+12025550101", body=body, content_type=content_type,
                            disposition_notification="", state="received")
    return notify_text_message(app_id="app", token="tok", selector="SEL:1", message=message,
                               badge=badge, display_name=display_name, preview=preview)


def test_a_text_message_push_carries_every_field():
    assert push() == {
        "verb": "NotifyTextMessage", "AppId": "app", "DeviceToken": "tok", "Selector": "SEL:1",
        "Id": "42", "ThreadId": "+12025550101", "UserName": "+12025550101",
        "UserDisplayName": "Alice", "Message": "Hi Bob", "Badge": 3, "Sound": "default",
    }
    assert notification_problems(push()) == []


def test_an_unknown_sender_name_is_left_out():
    assert "UserDisplayName" not in push(display_name=None)


def test_preview_off_says_only_that_there_is_a_message():
    assert push(preview=False)["Message"] == GENERIC_TEXT
    assert "Hi Bob" not in json.dumps(push(preview=False))


def test_a_receipt_is_pushed_silently():
    silent = push(body='{"message-id": "x", "display-notification": {}}', content_type=RECEIPT)
    assert "Message" not in silent and "Sound" not in silent
    assert silent["Id"] == "42" and silent["Badge"] == 3
    assert notification_problems(silent) == []


def test_long_texts_are_cut_and_whitespace_folded():
    text = preview_text("line one\n\n  line two " + "x" * 500, "", True)
    assert len(text) == PREVIEW_LENGTH and text.endswith("…")
    assert text.startswith("line one line two x")
    assert preview_text("   \n ", "", True) == GENERIC_TEXT  # never an empty banner


def test_attachments_show_their_caption_or_that_they_are_attachments():
    with_caption = json.dumps({"body": "Look!", "attachments": [{"content-url": "https://x/1"}]})
    two = json.dumps({"attachments": [{"content-url": "https://x/1"}, {"content-url": "https://x/2"}]})
    assert preview_text(with_caption, FILE_TRANSFER, True) == "Look!"
    assert preview_text(two, FILE_TRANSFER, True) == "📎 2 attachments"
    assert preview_text("not json", FILE_TRANSFER, True) == "📎 Attachment"
    for unreadable in ("[" * 5000, '{"body": ' * 100_000, "1" * 5000):
        assert preview_text(unreadable, FILE_TRANSFER, True) == "📎 Attachment"
    assert preview_text(with_caption, FILE_TRANSFER, False) == GENERIC_TEXT


def test_other_content_types_are_not_shown_raw():
    assert preview_text("<vcard/>", "text/vcard", True) == GENERIC_TEXT
    assert preview_text("Hi", "text/plain; charset=utf-8", True) == "Hi"
