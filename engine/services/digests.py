"""Sales' daily digest: one email a day per sales user, listing their open and overdue
leads (a manager's: the team's), on top of the real-time alert for each new lead.

Like the alerts, the database says what is owed: the tick asks ``plan_digests`` which
users are due today (the digest is on, the hour has come, none was sent today, none is
already queued) and stamps them queued; a job per user sends through the same MIME
builder and transport as every other email and records the day it went out, so a
retried job, a second tick or a flushed Redis never sends two digests in a day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from engine.config import Settings
from engine.mail.alerts import render_digest
from engine.services.alerts import send_staff_email
from engine.services.delivery import Mailer
from engine.services.views.inbox import SalesViewer, inbox
from engine.store import UnitOfWork, User, UserRole, end_read

__all__ = ["deliver_digest", "plan_digests"]

log = logging.getLogger(__name__)


def plan_digests(uow: UnitOfWork, now: datetime, settings: Settings) -> list[int]:
    """The sales users owed today's digest, stamped as queued (none before
    ``settings.digest_hour`` UTC)."""
    if now.hour < settings.digest_hour:
        return []
    stale = now - timedelta(seconds=settings.requeue_after_seconds)
    with uow:
        stmt = (
            select(User)
            .where(
                User.role == UserRole.SALES,
                User.active.is_(True),
                User.digest.is_(True),
                or_(User.digest_sent_on.is_(None), User.digest_sent_on < now.date()),
                or_(User.digest_enqueued_at.is_(None), User.digest_enqueued_at < stale),
            )
            .order_by(User.id)
            .limit(1000)
        )
        users = list(uow.session.scalars(uow.skip_locked(stmt)))
        for user in users:
            user.digest_enqueued_at = now
        ids = [user.id for user in users]
        uow.commit()
        return ids


def deliver_digest(uow_factory: Callable[[], UnitOfWork], mailer: Mailer, user_id: int) -> bool:
    """Send ``user_id`` today's digest if still owed; True when an email went out.

    A user with nothing open gets no email (the day is still marked done): a digest that
    says "nothing" every morning teaches people to ignore it."""
    settings, now = mailer.settings, mailer.clock.now()
    with uow_factory() as uow:
        user = uow.session.get(User, user_id)
        if (
            user is None
            or not user.active
            or not user.digest
            or user.role != UserRole.SALES
            or (user.digest_sent_on is not None and user.digest_sent_on >= now.date())
        ):
            end_read(uow)  # see engine.store.uow.end_read
            return False
        viewer = SalesViewer(user.id, user.email, team=user.sales_manager)
        to, name = user.email, user.name
        end_read(uow)
    page = inbox(uow_factory(), viewer, now, "open")
    sent = False
    if page.rows:
        base = settings.base_url.rstrip("/")
        links = {
            r.handoff_id: f"{base}/handoffs/{mailer.signer.handoff(r.handoff_id)}"
            for r in page.rows
        }
        subject, html, text = render_digest(name or to, page, links, f"{base}/inbox/")
        sent = _send(mailer, user_id, to, subject, html, text, now)
    with uow_factory() as uow:
        user = uow.session.get(User, user_id)
        if user is not None:
            if sent or not page.rows:
                user.digest_sent_on = now.date()
            user.digest_enqueued_at = None  # not sent: planned again at the next tick
            uow.commit()
    return sent


def _send(
    mailer: Mailer, user_id: int, to: str, subject: str, html: str, text: str, now: datetime
) -> bool:
    """Through the MIME builder and transport every email uses; the Message-ID is one per
    user and day, so a receiver can tell a retried digest from a new one. Its
    List-Unsubscribe leads to the inbox, where the digest is turned off."""
    return send_staff_email(
        mailer,
        to,
        subject,
        html,
        text,
        message_id_local=f"digest.{now:%Y%m%d}.{user_id}",
        date=now,
        unsubscribe_url=f"{mailer.settings.base_url.rstrip('/')}/inbox/",
        header=("X-Nurture-Digest", now.strftime("%Y-%m-%d")),
        what="digest",
    )
