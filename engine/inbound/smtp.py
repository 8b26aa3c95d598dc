"""A small receiving SMTP server (aiosmtpd) that hands every message to the inbound service.

For a mail server that can relay a domain's mail to a local port (Postfix ``transport``
maps, Exim routers) instead of piping it to a command. The 250 reply is given only after
the message is recorded: a failure to record answers 451, so the sending server keeps the
message and tries again, and nothing is lost. Refusals of the message itself (too large,
empty) answer 554, so it is bounced back instead of retried forever.

The service is passed in as ``deliver(raw, envelope_recipients)``: this package does not
import the services (tests/unit/test_layers.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from engine.exceptions import InvalidInputError

__all__ = ["Deliver", "InboundSmtpServer"]

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, Sequence[str]], object]


class _Handler:
    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def handle_DATA(  # noqa: N802 (the hook aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        recipients = [str(r) for r in envelope.rcpt_tos]
        loop = asyncio.get_running_loop()
        try:  # the service uses the database: keep it off the event loop
            await loop.run_in_executor(None, self._deliver, raw, recipients)
        except InvalidInputError as exc:
            return f"554 5.6.0 {exc}"[:500]
        except Exception:
            log.exception("an inbound message could not be recorded; the sender will retry")
            return "451 4.3.0 could not be recorded now; try again later"
        return "250 2.0.0 recorded"


class InboundSmtpServer:
    """``start()`` listens on ``host:port`` in a thread; ``stop()`` closes it.

    ``max_bytes`` is announced (``SIZE``) and enforced by aiosmtpd before the data is
    buffered whole."""

    def __init__(self, deliver: Deliver, host: str, port: int, max_bytes: int) -> None:
        self._controller = Controller(
            _Handler(deliver),
            hostname=host,
            port=port,
            data_size_limit=max_bytes,
            ready_timeout=10.0,
        )
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> InboundSmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._controller.stop()

    def __enter__(self) -> InboundSmtpServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
