"""Customer notifications the assistant promised: templates and the SMS sender."""

from callcenter.post_call.notifications.sms import TwilioSmsSender
from callcenter.post_call.notifications.templates import Message, render_notification

__all__ = ["Message", "TwilioSmsSender", "render_notification"]
