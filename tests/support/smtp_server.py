"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, a free port), with programmable
misbehaviour: temporary failures, refused recipients, dropped connections.

Tests talk to it over TCP exactly like production talks to a relay, so what they check is
the real protocol, not a mock of smtplib::

    server = SmtpTestServer().start()
    server.fail_with(451, "4.3.0 try later", times=1)
    ...  # send through SmtpTransport.from_url(server.url)
    (message,) = server.wait_for(1)
    server.stop()
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the envelope, the bytes as received, and them parsed."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    connection: int  # which connection carried it: 1 for the first, 2 for the next, ...

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", ""))


class _TrackingSMTP(SMTP):
    """aiosmtpd's protocol, registering its transport so the test can cut connections."""

    def __init__(self, owner: SmtpTestServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        with self._owner._lock:
            self._owner._live.add(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self._owner._lock:
            self._owner._live.discard(self.transport)  # type: ignore[arg-type]
        super().connection_lost(error)


class _Controller(Controller):
    def __init__(self, owner: SmtpTestServer, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _TrackingSMTP(self._owner, self.handler, **self.SMTP_kwargs)


class SmtpTestServer:
    """Collects every accepted message; thread-safe; behaviour set per test.

    Its own methods named ``handle_*`` are aiosmtpd's handler hooks.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._controller: _Controller | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._connections = 0
        self._live: set[asyncio.BaseTransport] = set()
        self._data_failures: list[str] = []
        self._refused: dict[str, str] = {}
        self._drop_in_data = 0

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> SmtpTestServer:
        """Listen on a free port of ``host``; returns self."""
        for _ in range(5):
            self.port = _free_port(self.host)
            controller = _Controller(
                self, hostname=self.host, port=self.port, server_hostname="localhost"
            )
            try:
                controller.start()
            except OSError:  # the port was taken between finding and binding it
                continue
            self._controller = controller
            return self
        raise RuntimeError("could not start the test SMTP server on a free port")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        """What ``SmtpTransport.from_url`` takes to talk to this server."""
        return f"smtp+insecure://{self.host}:{self.port}?timeout=5&helo=localhost"

    # -- behaviour ----------------------------------------------------------------------

    def fail_with(self, code: int, message: str, times: int = 1) -> None:
        """Answer the next ``times`` messages' end of DATA with ``code message``."""
        with self._lock:
            self._data_failures.extend([f"{code} {message}"] * times)

    def refuse_recipient(
        self, address: str, code: int = 550, message: str = "5.1.1 no such user"
    ) -> None:
        """Answer ``RCPT TO:<address>`` with ``code message``, always."""
        with self._lock:
            self._refused[address.lower()] = f"{code} {message}"

    def allow_recipient(self, address: str) -> None:
        """Undo :meth:`refuse_recipient` (greylisting lifted)."""
        with self._lock:
            self._refused.pop(address.lower(), None)

    def drop_during_data(self, times: int = 1) -> None:
        """Cut the connection, without a reply, after receiving the next messages' DATA:
        the client cannot know whether they were delivered."""
        with self._lock:
            self._drop_in_data += times

    def drop_connections(self, timeout: float = 5.0) -> None:
        """Close every open client connection from the server side (as an idle timeout
        would), and wait until they are gone."""
        assert self._controller is not None, "start() the server first"
        with self._lock:
            live = list(self._live)
        for transport in live:
            self._controller.loop.call_soon_threadsafe(transport.close)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._live & set(live):
                    return
            time.sleep(0.01)
        raise TimeoutError("client connections did not close")

    # -- what arrived ---------------------------------------------------------------------

    def accepted(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def by_message_id(self) -> dict[str, ReceivedMessage]:
        with self._lock:
            return {m.message_id: m for m in self._messages}

    @property
    def connections(self) -> int:
        """Client connections that sent at least one MAIL FROM."""
        with self._lock:
            return self._connections

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages were accepted; TimeoutError if not."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"{len(self._messages)} of {count} messages arrived")
            return list(self._messages)

    # -- aiosmtpd handler hooks -------------------------------------------------------------

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        with self._lock:
            if getattr(session, "test_connection", None) is None:
                self._connections += 1
                session.test_connection = self._connections  # type: ignore[attr-defined]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            refusal = self._refused.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self._lock:
            if self._drop_in_data:
                self._drop_in_data -= 1
                assert server.transport is not None
                server.transport.abort()
                return "451 never seen by the client"
            if self._data_failures:
                return self._data_failures.pop(0)
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        with self._arrived:
            received = ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=parsed,  # type: ignore[arg-type]
                connection=getattr(session, "test_connection", 0),
            )
            self._messages.append(received)
            self._arrived.notify_all()
        return "250 OK: queued"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
