"""Alerts to sales for handoffs: owner email, signed webhook, SLA escalation.

Like the outbox, the handoff row says what is still owed (``alert_email_sent_at``,
``webhook_delivered_at``/``webhook_next_at``, ``escalation_sent_at``); the tick plans the
work and jobs carry it out, so a dead worker or a flushed Redis delays an alert, never
loses it. The webhook is signed: ``X-Nurture-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">`` with ``X-Nurture-Timestamp`` so receivers can refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from sqlalchemy import and_, or_, select

from engine.config import Settings
from engine.mail.alerts import render_handoff_alert
from engine.mail.mime import build_message
from engine.mail.transport import SendError
from engine.services.delivery import Mailer
from engine.services.handoffs import HandoffView
from engine.services.outcomes import backoff
from engine.services.ports import WebhookPoster
from engine.store import Handoff, HandoffStatus, UnitOfWork, end_read

log = logging.getLogger(__name__)


@dataclass
class AlertReport:
    emailed: bool = False
    escalated: bool = False
    webhook: str = "skipped"  # handoff.created: delivered | retry | gave_up | skipped
    overdue_webhook: str = "skipped"  # handoff.overdue: the same outcomes


@dataclass(frozen=True)
class Hook:
    """One webhook event a handoff owes, and the columns that keep its delivery."""

    event: str
    prefix: str  # <prefix>_delivered_at, _attempts, _next_at, _last_error on the handoff
    overdue_only: bool = False

    def column(self, name: str) -> str:
        return f"{self.prefix}_{name}"


CREATED = Hook("handoff.created", "webhook")
OVERDUE = Hook("handoff.overdue", "overdue_webhook", overdue_only=True)
HOOKS = (CREATED, OVERDUE)


def _hook_owed_sql(hook: Hook, settings: Settings, now: datetime) -> Any:
    """``WHERE`` clause: the handoff owes ``hook`` now (plan side of ``_hook_owed``)."""
    delivered, attempts, next_at = (
        getattr(Handoff, hook.column(n)) for n in ("delivered_at", "attempts", "next_at")
    )
    clause = and_(
        delivered.is_(None),
        attempts < settings.webhook_max_attempts,
        or_(next_at.is_(None), next_at <= now),
    )
    return and_(Handoff.status == HandoffStatus.OVERDUE, clause) if hook.overdue_only else clause


def _hook_owed(row: Handoff, hook: Hook, settings: Settings, now: datetime) -> bool:
    """The handoff owes ``hook`` now (deliver side of ``_hook_owed_sql``)."""
    if not settings.webhook_url:
        return False
    if hook.overdue_only and row.status != HandoffStatus.OVERDUE:
        return False
    next_at = getattr(row, hook.column("next_at"))
    return (
        getattr(row, hook.column("delivered_at")) is None
        and (next_at is None or next_at <= now)
        and getattr(row, hook.column("attempts")) < settings.webhook_max_attempts
    )


def plan_alerts(uow: UnitOfWork, now: datetime, settings: Settings) -> list[int]:
    """Mark missed SLAs overdue, then stamp and return the handoffs with alerts owed."""
    stale = now - timedelta(seconds=settings.requeue_after_seconds)
    with uow:
        session = uow.session
        overdue = select(Handoff).where(Handoff.status == HandoffStatus.OPEN, Handoff.due_at < now)
        for row in session.scalars(uow.skip_locked(overdue)):
            row.status = HandoffStatus.OVERDUE
            row.escalated_at = now
        owed = [Handoff.alert_email_sent_at.is_(None)]
        if settings.webhook_url:
            owed += [_hook_owed_sql(hook, settings, now) for hook in HOOKS]
        if settings.escalation_email:
            owed.append(
                and_(Handoff.status == HandoffStatus.OVERDUE, Handoff.escalation_sent_at.is_(None))
            )
        stmt = (
            select(Handoff)
            .where(
                or_(*owed),
                Handoff.status != HandoffStatus.WITHDRAWN,  # the prospect was erased
                or_(Handoff.alert_enqueued_at.is_(None), Handoff.alert_enqueued_at < stale),
            )
            .order_by(Handoff.id)
            .limit(max(1, settings.alert_dispatch_limit))
        )
        rows = list(session.scalars(uow.skip_locked(stmt)))
        for row in rows:
            row.alert_enqueued_at = now
        ids = [row.id for row in rows]
        uow.commit()
        return ids


def deliver_alerts(
    uow_factory: Callable[[], UnitOfWork],
    mailer: Mailer,
    handoff_id: int,
    post: WebhookPoster,
) -> AlertReport:
    """Send whatever this handoff still owes; each outcome is committed as it happens.

    ``post`` delivers the webhook (the runtime's ``HttpWebhookPoster``; tests may pass
    their own)."""
    settings, now = mailer.settings, mailer.clock.now()
    report = AlertReport()
    owed = _owed(uow_factory, handoff_id, settings, now)
    if owed is None:
        return report
    decide_url = f"{settings.base_url.rstrip('/')}/handoffs/{mailer.signer.handoff(handoff_id)}"
    changes = _send_emails(mailer, owed, decide_url, report, now)
    for hook, attempts in owed.hooks.items():
        outcome, hook_changes = _webhook(settings, owed.view, decide_url, hook, attempts, now, post)
        changes |= hook_changes
        if hook is CREATED:
            report.webhook = outcome
        else:
            report.overdue_webhook = outcome
    with uow_factory() as uow:
        row = uow.session.get(Handoff, handoff_id)
        if row is not None:
            for name, value in changes.items():
                setattr(row, name, value)
            row.alert_enqueued_at = None  # anything still owed is planned again when due
            uow.commit()
    return report


@dataclass(frozen=True)
class _Owed:
    """What one handoff still owes, read in a short transaction so that no mail server
    or webhook receiver is waited for with the row open."""

    view: HandoffView
    email: bool
    escalation: bool
    hooks: dict[Hook, int]  # each webhook owed, with its attempts so far


def _owed(
    uow_factory: Callable[[], UnitOfWork], handoff_id: int, settings: Settings, now: datetime
) -> _Owed | None:
    """None when the handoff is gone or withdrawn: a withdrawn lead is nobody's to call."""
    with uow_factory() as uow:
        row = uow.session.get(Handoff, handoff_id)
        if row is None or row.status == HandoffStatus.WITHDRAWN:
            end_read(uow)  # only read: see engine.store.uow.end_read
            return None
        owed = _Owed(
            view=HandoffView.of(row),
            email=row.alert_email_sent_at is None,
            escalation=bool(settings.escalation_email)
            and row.status == HandoffStatus.OVERDUE
            and row.escalation_sent_at is None,
            hooks={
                hook: getattr(row, hook.column("attempts"))
                for hook in HOOKS
                if _hook_owed(row, hook, settings, now)
            },
        )
        end_read(uow)
        return owed


def _send_emails(
    mailer: Mailer, owed: _Owed, decide_url: str, report: AlertReport, now: datetime
) -> dict[str, Any]:
    """The owner's alert and the escalation, if owed; returns the handoff's columns to set.

    An alert with nowhere to go (no owner, no sales inbox) counts as done, with a warning:
    retrying it would never succeed.
    """
    settings = mailer.settings
    changes: dict[str, Any] = {}
    if owed.email:
        to = owed.view.context.get("owner") or settings.sales_inbox
        if to:
            report.emailed = _email(mailer, owed.view, to, decide_url, "created")
        else:
            log.warning("handoff %s has no owner and NURTURE_SALES_INBOX is unset", owed.view.id)
        if report.emailed or not to:
            changes["alert_email_sent_at"] = now
    if owed.escalation:
        report.escalated = _email(
            mailer, owed.view, settings.escalation_email or "", decide_url, "overdue"
        )
        if report.escalated:
            changes["escalation_sent_at"] = now
    return changes


def _email(mailer: Mailer, view: HandoffView, to: str, decide_url: str, kind: str) -> bool:
    subject, html, text = render_handoff_alert(view.context, view.due_at, decide_url, kind)
    return send_staff_email(
        mailer,
        to,
        subject,
        html,
        text,
        message_id_local=f"handoff-{kind}.{mailer.signer.handoff(view.id)}",
        date=mailer.clock.now(),
        unsubscribe_url=decide_url,
        header=("X-Nurture-Handoff", str(view.id)),
        what=f"handoff {view.id}: alert email",
    )


def send_staff_email(
    mailer: Mailer,
    to: str,
    subject: str,
    html: str,
    text: str,
    *,
    message_id_local: str,
    date: datetime,
    unsubscribe_url: str,
    header: tuple[str, str],
    what: str,
) -> bool:
    """Mail to our own users (alerts, digests) through the MIME builder and transport every
    email uses, from the configured sender. The Message-ID's local part is the caller's, so a
    receiver can tell a retried alert or digest from a new one; a transport failure is logged
    and answered False, for the caller to retry at its next round."""
    name, sender = parseaddr(mailer.settings.mail_from)
    domain = sender.rpartition("@")[2] or "localhost"
    raw = build_message(
        from_addr=sender,
        from_name=name or None,
        to_addr=to,
        reply_to=None,
        subject=subject,
        html=html,
        text=text,
        message_id=f"<{message_id_local}@{domain}>",
        date=date,
        list_unsubscribe_url=unsubscribe_url,
        list_unsubscribe_mailto=f"mailto:{sender}",
        extra_headers={header[0]: header[1]},
    )
    try:
        mailer.transport.send(sender, to, raw)
    except SendError as exc:
        log.warning("%s to %s failed: %s", what, to, exc)
        return False
    return True


def webhook_body(view: HandoffView, decide_url: str, event: str = CREATED.event) -> bytes:
    """The JSON payload; ``text`` makes it readable as-is by Slack-style incoming hooks."""
    c = view.context
    who = c.get("prospect", {}).get("name") or c.get("prospect", {}).get("email")
    company = c.get("prospect", {}).get("company")
    lead = f"{who}{f' ({company})' if company else ''}"
    if event == OVERDUE.event:
        text = (
            f"Overdue lead: {lead}, score {view.score}, was due "
            f"{view.due_at:%Y-%m-%d %H:%M} UTC and nobody has decided yet: {decide_url}"
        )
    else:
        text = (
            f"Re-engaged lead: {lead}, score {view.score}. "
            f"Why now: {c.get('reason')}. Opener: {c.get('opening_line')} "
            f"Follow up by {view.due_at:%Y-%m-%d %H:%M} UTC: {decide_url}"
        )
    payload = {"event": event, "text": text, "handoff": view.to_json()}
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _webhook(
    settings: Settings,
    view: HandoffView,
    decide_url: str,
    hook: Hook,
    attempts: int,
    now: datetime,
    post: WebhookPoster,
) -> tuple[str, dict[str, Any]]:
    """POST one signed delivery of ``hook``; its outcome and the columns to update."""
    body = webhook_body(view, decide_url, hook.event)
    timestamp = str(int(now.timestamp()))
    suffix = "" if hook is CREATED else f"-{hook.event.rpartition('.')[2]}"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Nurture-Webhook/1",
        "X-Nurture-Event": hook.event,
        "X-Nurture-Delivery": f"handoff-{view.id}{suffix}",
        "X-Nurture-Timestamp": timestamp,
        "X-Nurture-Signature": sign(
            settings.webhook_secret or settings.secret_key, timestamp, body
        ),
    }
    try:
        status = post(settings.webhook_url or "", body, headers)
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except OSError as exc:
        error = str(exc)
    tries = attempts + 1
    if error is None:
        return "delivered", {
            hook.column("delivered_at"): now,
            hook.column("attempts"): tries,
            hook.column("last_error"): None,
        }
    log.warning("handoff %s: %s webhook attempt %d failed: %s", view.id, hook.event, tries, error)
    return "gave_up" if tries >= settings.webhook_max_attempts else "retry", {
        hook.column("attempts"): tries,
        hook.column("next_at"): now + backoff(tries, settings),
        hook.column("last_error"): error[:2000],
    }
