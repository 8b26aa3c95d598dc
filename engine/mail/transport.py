"""Getting built messages out: over SMTP, or into a local folder when no server is set.

The delivery code needs three answers from a send, because each means something different
for the outbox row:

* :class:`TransientSendError`: nothing was delivered, try again later (4xx, refused or
  dropped connections, timeouts before the message content was sent);
* :class:`PermanentSendError`: the server said no for good (5xx); ``recipient_refused`` is
  a hard bounce for that address, which must be suppressed;
* :class:`UncertainSendError` (a transient error): the connection died while or after the
  message content was sent, so the server may have accepted it. It is never re-sent
  automatically here; the caller records it as uncertain.

:class:`SmtpTransport` keeps one connection open across messages (a TCP + TLS + AUTH
handshake per email would cost more than the rest of sending) and reconnects once,
transparently, when the server has dropped an idle connection.

This module is the seam the rest of the engine imports: the errors
(``engine.mail.send_errors``), the :class:`Transport` protocol, the two transports
(``engine.mail.smtp_transport``, ``engine.mail.local_outbox``) and :func:`make_transport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from engine.mail.local_outbox import LocalOutboxTransport, OutboxEntry, list_outbox
from engine.mail.send_errors import (
    PermanentSendError,
    RecipientDeferredError,
    SendError,
    TransientSendError,
    UncertainSendError,
)
from engine.mail.smtp_transport import SmtpConfig, SmtpTransport, parse_smtp_url

if TYPE_CHECKING:
    from engine.config import Settings

__all__ = [
    "LocalOutboxTransport",
    "OutboxEntry",
    "PermanentSendError",
    "RecipientDeferredError",
    "SendError",
    "SmtpConfig",
    "SmtpTransport",
    "TransientSendError",
    "Transport",
    "UncertainSendError",
    "list_outbox",
    "make_transport",
    "parse_smtp_url",
]


class Transport(Protocol):
    """Where built messages go. Implementations raise :class:`SendError` subclasses."""

    def send(self, from_addr: str, to_addr: str, raw: bytes) -> None: ...

    def close(self) -> None: ...


def make_transport(settings: Settings) -> Transport:
    """SMTP when ``settings.smtp_url`` is set, else the local outbox at
    ``settings.outbox_dir``. Connects nothing until the first send."""
    if settings.smtp_url:
        return SmtpTransport.from_url(settings.smtp_url)
    return LocalOutboxTransport(settings.outbox_dir)
