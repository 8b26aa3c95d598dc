"""What the workers do to the outbox, without SMTP, for tests that drive the tick alone.

A wait after an email counts from when the email went out (``engine.core.stepping``), so a
test that ticks through a sequence must let its emails go out too; ``send_queued`` marks
every queued email sent at ``at`` the way delivery records a send (the row, the
``email.sent`` event, the wait restarted by ``restart_wait_after_send``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from engine.services.enrollment_steps import restart_wait_after_send
from engine.store import Event, Message, MessageStatus, UnitOfWork


def send_queued(uow_factory: Callable[[], UnitOfWork], at: datetime) -> int:
    """Mark every queued email sent at ``at``; returns how many."""
    with uow_factory() as uow:
        session = uow.session
        queued = list(
            session.scalars(select(Message).where(Message.status == MessageStatus.QUEUED))
        )
        for message in queued:
            message.status = MessageStatus.SENT
            message.sent_at = at
            session.add(
                Event(
                    prospect_id=message.prospect_id,
                    type="email.sent",
                    occurred_at=at,
                    received_at=at,
                    data={"template": message.template_key, "step": message.step_id},
                    message_id=message.id,
                    source="nurture",
                )
            )
        session.flush()
        for message in queued:
            restart_wait_after_send(session, message.id, message.step_id, at)
        uow.commit()
        return len(queued)
