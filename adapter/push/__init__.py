"""Push notifications through the Acrobits push service (ACROBITS.md 3)."""

from .client import PushClient, PushOutcome, PushResult
from .notification import notify_text_message
from .sender import Pusher

__all__ = ["PushClient", "PushOutcome", "PushResult", "Pusher", "notify_text_message"]
