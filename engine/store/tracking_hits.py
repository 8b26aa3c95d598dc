"""Tracking hits: opens, clicks and honeypot hits received but not yet judged and scored.

The public tracking endpoints answer in a few milliseconds by writing one row here and
nothing else: no lock on the prospect or the message, so a burst of opens of one message
never queues behind one row lock. A job (``workers.jobs.tracking_hits_job``) turns each
row into its event exactly as the endpoint used to (bot verdict, idempotency, scoring,
exits, handoffs), with the row's ``received_at`` as the moment, and deletes the row in the
same transaction: a hit is in the database before the answer, and is judged once.

The request's agent, address and method are kept only until then (the bot rules need
them); the event stores the verdict and its reason, never the agent or the address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, BigId


class TrackingHit(Base):
    """One request to a tracking URL whose token was good, waiting for its event.

    No foreign key to the message: the hit is written without reading the message (an
    open's pixel does not need it), and a message deleted or a prospect erased meanwhile
    simply records nothing when the hit is drained, as a request would have.
    """

    __tablename__ = "tracking_hits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int] = mapped_column(BigInteger)
    link_index: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(1000))
    ip: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
