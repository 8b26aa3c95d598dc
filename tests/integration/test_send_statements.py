"""What a sent message costs the database: on PostgreSQL one statement (its ``sent``
marker, its ``email.sent`` event, its enrollment's wait restarted and the next row's
``transmitting`` marker, as data-modifying CTEs in one autocommitted statement), on
SQLite the same four writes in one transaction; everything else is paid once per batch.
Measured as the difference between a batch of 13 and a batch of 3, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from engine.adapters.ratelimit import LocalRateLimiter
from engine.clock import ManualClock
from engine.config import Settings
from engine.core.policy import FrequencyCap
from engine.mail.render import Renderer
from engine.mail.tokens import TokenSigner
from engine.services.delivery import Mailer, send_batch
from engine.services.template_sync import sync_templates
from engine.services.tick import tick
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Message,
    MessageStatus,
    Prospect,
    UnitOfWork,
)
from tests.support.sequences import PRICE, store
from tests.support.statements import counting

ROOT = Path(__file__).resolve().parents[2]
CAP = FrequencyCap(100, timedelta(days=7))


class Accepting:
    """A transport whose server accepts everything: the database is what is measured."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, return_path: str, to_addr: str, raw: bytes) -> None:
        self.sent.append(to_addr)

    def close(self) -> None:
        pass


def queue_emails(
    uow_factory: Callable[[], UnitOfWork], version: Any, count: int, now: datetime
) -> list[int]:
    """``count`` prospects lost on price, advanced by the tick to their first email (the
    enrollment then waits 4 days after it); returns the queued messages' ids."""
    with uow_factory() as uow:
        start = uow.session.scalar(select(func.count()).select_from(Prospect)) or 0
        ids = uow.session.scalars(
            insert(Prospect).returning(Prospect.id),
            [
                {"email": f"s{start + i}@example.com", "first_name": f"S{i}",
                 "status": "closed_lost", "lost_reason": "price", "attributes": {},
                 "created_at": now, "updated_at": now}
                for i in range(count)
            ],
        ).all()  # fmt: skip
        uow.session.execute(
            insert(Enrollment),
            [
                {"prospect_id": pid, "sequence_id": version.sequence_id,
                 "sequence_version_id": version.id, "status": EnrollmentStatus.ACTIVE,
                 "cursor": 0, "state": {}, "next_run_at": now - timedelta(seconds=1),
                 "enrolled_at": now - timedelta(days=1), "updated_at": now, "lock_version": 1}
                for pid in ids
            ],
        )  # fmt: skip
        uow.commit()
    assert tick(uow_factory, now, batch_size=100, cap=CAP).emails_queued == count
    with uow_factory() as uow:
        return list(
            uow.session.scalars(
                select(Message.id)
                .where(Message.status == MessageStatus.QUEUED)
                .order_by(Message.id)
            )
        )


def test_a_sent_message_costs_one_statement_on_postgresql(db_engine, uow_factory, now):
    sync_templates(uow_factory(), ROOT / "templates", now)
    version = store(uow_factory, PRICE, now)
    sent_at = now + timedelta(minutes=1)  # after the tick: the wait restarts at the send
    transport = Accepting()
    mailer = Mailer(
        settings=Settings(secret_key="statements", frequency_cap=100),
        renderer=Renderer(),
        transport=transport,  # type: ignore[arg-type]
        signer=TokenSigner("statements"),
        limiter=LocalRateLimiter(1_000_000),
        clock=ManualClock(sent_at),
    )
    warm = queue_emails(uow_factory, version, 2, now)
    assert send_batch(uow_factory, mailer, warm).sent == 2  # template compiled, caches full

    counts = {}
    for size in (3, 13):
        ids = queue_emails(uow_factory, version, size, now)
        with counting(db_engine) as statements:
            report = send_batch(uow_factory, mailer, ids)
        assert (report.claimed, report.sent) == (size, size)
        counts[size] = statements

    per_message = (len(counts[13]) - len(counts[3])) / 10
    postgres = db_engine.dialect.name == "postgresql"
    # SQLite: the sent UPDATE, the event INSERT, the enrollment UPDATE, the next mark
    assert per_message == (1 if postgres else 4), (counts[3], counts[13])
    # per batch: the claim, the policy's six queries (the join, suppressions, current
    # templates, their checksums, out-of-office, recent sends), the first mark, and on
    # PostgreSQL the session's synchronous_commit setting and its reset
    assert len(counts[3]) - 3 * per_message == (10 if postgres else 7), counts[3]

    with uow_factory() as uow:
        statuses = set(uow.session.scalars(select(Message.status)))
        events = uow.session.scalar(
            select(func.count()).select_from(Event).where(Event.type == "email.sent")
        )
        waits = set(uow.session.execute(select(Enrollment.next_run_at, Enrollment.lock_version)))
    assert statuses == {MessageStatus.SENT}
    assert events == len(transport.sent) == 18
    # every enrollment's 4-day wait restarted at the send, each exactly once
    assert waits == {(sent_at + timedelta(days=4), 3)}
