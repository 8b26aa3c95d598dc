"""Sending over SMTP: ``NURTURE_SMTP_URL`` parsed, and one connection kept across messages.

A TCP + TLS + AUTH handshake per email would cost more than the rest of sending, so
:class:`SmtpTransport` keeps its connection open and reconnects once, transparently, when
the server has dropped an idle one. Every reply is mapped to the outbox's three answers
(``engine.mail.send_errors``): transient, permanent (a refused recipient is a hard
bounce), or uncertain once the message content has started to go out.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from engine.mail.send_errors import (
    PermanentSendError,
    RecipientDeferredError,
    SendError,
    TransientSendError,
    UncertainSendError,
)

__all__ = ["SmtpConfig", "SmtpTransport", "parse_smtp_url"]


class _DroppedError(Exception):
    """The connection turned out to be dead before anything of this message was sent."""


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _refusal(step: str, code: int, reply: bytes | str, *, recipient: bool = False) -> SendError:
    message = _text(reply)
    text = f"SMTP {code} {message} ({step})"
    if 500 <= code < 600:
        return PermanentSendError(
            text, code=code, smtp_message=message, recipient_refused=recipient
        )
    if recipient:
        return RecipientDeferredError(text, code=code, smtp_message=message)
    return TransientSendError(text, code=code, smtp_message=message)


@dataclass(frozen=True)
class SmtpConfig:
    """A parsed ``NURTURE_SMTP_URL`` (see :func:`parse_smtp_url`)."""

    host: str
    port: int
    tls: str  # "implicit" (smtps), "starttls" (when offered), "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 60.0
    helo: str | None = None


def parse_smtp_url(url: str) -> SmtpConfig:
    """``smtp://[user:pass@]host[:port][?starttls=0|1&timeout=S&helo=name]``.

    ``smtp://`` uses STARTTLS when the server offers it and ``starttls=1`` is given or the
    port is 587 (the default port); ``smtps://`` is TLS from the first byte (default 465);
    ``smtp+insecure://`` never encrypts (local test servers; default port 25).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps", "smtp+insecure"):
        raise ValueError(f"SMTP URL {url!r}: use smtp://, smtps:// or smtp+insecure://")
    if not parts.hostname:
        raise ValueError(f"SMTP URL {url!r} names no host: smtp://host:587")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "timeout", "helo"}
    if unknown:
        raise ValueError(f"SMTP URL: unknown option(s) {', '.join(sorted(unknown))}")
    try:
        port = parts.port or {"smtp": 587, "smtps": 465, "smtp+insecure": 25}[scheme]
        timeout = float(query.get("timeout", 60))
    except ValueError as exc:
        raise ValueError(f"SMTP URL {url!r}: {exc}") from None
    if scheme == "smtps":
        tls = "implicit"
    elif scheme == "smtp+insecure":
        tls = "none"
    elif "starttls" in query:
        tls = "starttls" if query["starttls"].lower() in ("1", "true", "yes", "on") else "none"
    else:
        tls = "starttls" if port == 587 else "none"
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        helo=query.get("helo"),
    )


class SmtpTransport:
    """One reused SMTP connection; thread-safe (sends are serialized on it)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SmtpTransport:
        """A transport for ``url`` (see :func:`parse_smtp_url`); connects on first send."""
        return cls(parse_smtp_url(url))

    # -- connection -----------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        try:
            smtp: smtplib.SMTP
            if config.tls == "implicit":
                smtp = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    local_hostname=config.helo,
                    timeout=config.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    config.host, config.port, local_hostname=config.helo, timeout=config.timeout
                )
            try:
                smtp.ehlo_or_helo_if_needed()
                if config.tls == "starttls":
                    if smtp.has_extn("starttls"):
                        smtp.starttls(context=ssl.create_default_context())
                        smtp.ehlo()
                    elif config.username:
                        raise TransientSendError(
                            f"{config.host}:{config.port} does not offer STARTTLS; not sending "
                            "the password in clear (add ?starttls=0 to the URL to allow it)"
                        )
                if config.username:
                    smtp.login(config.username, config.password or "")
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPResponseException as exc:
            # A refused greeting, EHLO or login is the server's or the configuration's
            # problem, not this message's: retry later rather than fail the message.
            raise TransientSendError(
                f"SMTP {exc.smtp_code} {_text(exc.smtp_error)} (connecting to "
                f"{config.host}:{config.port})",
                code=exc.smtp_code,
                smtp_message=_text(exc.smtp_error),
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(
                f"cannot connect to {config.host}:{config.port}: {exc}"
            ) from exc
        return smtp

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        """Say QUIT and close the connection (if any); the next send reconnects."""
        with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()

    # -- sending --------------------------------------------------------------------------

    def send(self, from_addr: str, to_addr: str, raw: bytes) -> None:
        """Deliver ``raw`` (CRLF line ends) from ``from_addr`` to ``to_addr``, or raise
        :class:`TransientSendError`, :class:`UncertainSendError` or
        :class:`PermanentSendError`."""
        with self._lock:
            reused = self._smtp is not None
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._envelope(self._smtp, from_addr, to_addr)
            except _DroppedError as exc:
                self._discard()
                if not reused:
                    raise TransientSendError(f"connection lost before sending: {exc}") from exc
                # An idle connection the server closed: reconnect, once.
                self._smtp = self._connect()
                try:
                    self._envelope(self._smtp, from_addr, to_addr)
                except _DroppedError as again:
                    self._discard()
                    raise TransientSendError(f"connection lost before sending: {again}") from again
            self._data(self._smtp, raw)

    def _envelope(self, smtp: smtplib.SMTP, from_addr: str, to_addr: str) -> None:
        try:
            smtp.putcmd("mail", f"FROM:{_path(from_addr)}")  # smtp.mail(from_addr)
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _DroppedError(str(exc)) from exc
        if code == 421:  # "closing connection": typical for an idle one
            raise _DroppedError(f"SMTP 421 {_text(reply)}")
        if code != 250:
            self._reset(smtp)
            raise _refusal(f"MAIL FROM:<{from_addr}>", code, reply)
        try:
            smtp.putcmd("rcpt", f"TO:{_path(to_addr)}")  # smtp.rcpt(to_addr)
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard()
            raise TransientSendError(f"connection lost at RCPT TO: {exc}") from exc
        if code not in (250, 251):
            if code == 421:
                self._discard()
            else:
                self._reset(smtp)
            raise _refusal(f"RCPT TO:<{to_addr}>", code, reply, recipient=True)

    def _data(self, smtp: smtplib.SMTP, raw: bytes) -> None:
        try:
            smtp.putcmd("data")
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Nothing of the message went out yet: not delivered, for certain.
            self._discard()
            raise TransientSendError(f"connection lost at DATA: {exc}") from exc
        if code != 354:
            if code == 421:
                self._discard()
            else:
                self._reset(smtp)
            raise _refusal("DATA", code, reply)
        try:
            smtp.send(_dot_stuff(raw))
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard()
            raise UncertainSendError(
                f"connection lost while sending the message, which may have been delivered: {exc}"
            ) from exc
        if code == 421:
            self._discard()
        if code != 250:
            raise _refusal("end of DATA", code, reply)

    def _reset(self, smtp: smtplib.SMTP) -> None:
        """RSET after a refusal so the connection can carry the next message."""
        try:
            code, _ = smtp.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._discard()


# An address smtplib.quoteaddr would give back as it is, in angle brackets: no spaces,
# quotes, brackets, comments or list separators, one "@". The envelope addresses we send
# (a tagged bounce address, a prospect's address) always are.
_PLAIN_ADDRESS = re.compile(r"""[^\s<>()\[\],;:\\"@]+@[^\s<>()\[\],;:\\"@]+""")


def _path(address: str) -> str:
    """``smtplib.quoteaddr(address)``, the reverse- or forward-path of MAIL and RCPT:
    ``<address>`` at once for a plain address, where quoteaddr's ``email.utils.parseaddr``
    costs ~15 us a call, twice a message."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _dot_stuff(raw: bytes) -> bytes:
    """RFC 5321 transparency: double a leading dot on every line, end with CRLF . CRLF.

    ``bytes.replace`` instead of smtplib's regex: same result, a fraction of the time on a
    60 KB message. Lines end with CRLF, so every line start follows an LF.
    """
    stuffed = raw.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


# --- the local outbox -----------------------------------------------------------------
