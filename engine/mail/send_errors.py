"""What a failed send means for the outbox row: the exceptions every transport raises.

Apart from the transports so that the services that classify outcomes (delivery, alerts,
previews) depend on the meaning of a failure, not on SMTP; see ``engine.mail.transport``
for which one is raised when.
"""

from __future__ import annotations

__all__ = [
    "PermanentSendError",
    "RecipientDeferredError",
    "SendError",
    "TransientSendError",
    "UncertainSendError",
]


class SendError(Exception):
    """A message was not (or not certainly) delivered; ``code``/``smtp_message`` are the
    server's reply when there was one."""

    def __init__(
        self, message: str, *, code: int | None = None, smtp_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.smtp_message = smtp_message


class TransientSendError(SendError):
    """Not delivered; worth retrying later (4xx reply, connection problem)."""


class UncertainSendError(TransientSendError):
    """The connection failed after the message content started to go out: it may have
    been delivered. Do not re-send blindly."""


class RecipientDeferredError(TransientSendError):
    """A 4xx to RCPT: this one recipient is deferred (greylisting, a full mailbox); the
    server itself is fine, so the rest of a batch carries on."""


class PermanentSendError(SendError):
    """Refused for good (5xx). ``recipient_refused`` is True when the RCPT was refused:
    a hard bounce for that address."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        smtp_message: str | None = None,
        recipient_refused: bool = False,
    ) -> None:
        super().__init__(message, code=code, smtp_message=smtp_message)
        self.recipient_refused = recipient_refused
