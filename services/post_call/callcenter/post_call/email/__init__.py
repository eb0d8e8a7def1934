"""Follow-up email: templates and the SMTP sender."""

from callcenter.post_call.email.sender import SmtpSender
from callcenter.post_call.email.templates import FollowUp, render_follow_up

__all__ = ["FollowUp", "SmtpSender", "render_follow_up"]
