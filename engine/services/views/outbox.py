"""The local outbox page's one database question: where a message's tracked links go."""

from __future__ import annotations

from sqlalchemy import select

from engine.store import Message, UnitOfWork

__all__ = ["message_links"]


def message_links(uow: UnitOfWork, message_id: int) -> list[str]:
    """The original URLs a sent message contained (what its click tokens index)."""
    with uow:
        links = uow.session.scalar(select(Message.links).where(Message.id == message_id))
    return list(links or [])
