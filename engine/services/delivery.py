"""Send claimed outbox rows over a transport, exactly once wherever SMTP allows it.

The protocol, row by row (the database is the truth; Redis only carries the ids):

1. **claim**: ``queued -> sending`` with a random claim token and a lease, in one commit.
   Two workers given the same ids cannot both claim a row.
2. **decide**: the send policy (suppression, enrollment, window, frequency cap) may hold
   the row (back to ``queued`` with a later ``not_before``) or drop it, before any SMTP.
3. **transmit**: right before its SMTP transaction a row becomes ``transmitting`` (a
   conditional update on the claim token, committed); after the server's 250 it becomes
   ``sent`` in the same commit that marks the next row ``transmitting``.

So a crash leaves at most one ``transmitting`` row per worker: the only row for which the
server may or may not have accepted the message (RFC 1047). Recovery re-sends it with the
same Message-ID and records an incident; rows still ``sending`` were never transmitted and
are re-sent silently. Progress commits on PostgreSQL use ``synchronous_commit = off``:
a crash of the *database server* can lose the last few milliseconds of markers, so the
emails they covered may go out twice (unlogged when the lost marker was ``transmitting``),
and none is ever lost: a row only leaves the outbox with a committed ``sent``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.config import Settings
from engine.mail.render import Renderer, StoredTemplate
from engine.mail.tokens import TokenSigner
from engine.mail.transport import (
    PermanentSendError,
    RecipientDeferredError,
    TransientSendError,
    Transport,
    UncertainSendError,
)
from engine.services.compose import Composed, compose, email_step, sender_of
from engine.services.delivery_writes import Outgoing, Progress, claim_rows
from engine.services.outcomes import (
    record_bounce,
    record_failure,
    record_hold,
    record_retry,
    record_uncertain,
)
from engine.services.policy_facts import (
    EnrollmentFacts,
    PolicyInputs,
    PolicyItem,
    load_policy_inputs,
)
from engine.services.ports import RateLimiter
from engine.services.template_versions import not_stored, stored_template
from engine.store import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Mailer:
    """What a worker process needs to send: built once per process, reused by every job
    (the SMTP connection above all)."""

    settings: Settings
    renderer: Renderer
    transport: Transport
    signer: TokenSigner
    limiter: RateLimiter
    clock: Clock


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    held: int = 0
    dropped: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    sent_ids: list[int] = field(default_factory=list)


def send_batch(
    uow_factory: Callable[[], UnitOfWork], mailer: Mailer, message_ids: list[int]
) -> DeliveryReport:
    """Claim, decide and send these outbox rows; safe to call twice with the same ids."""
    token = secrets.token_hex(8)
    report = DeliveryReport()
    claimed = claim(uow_factory(), message_ids, token, mailer)
    report.claimed = len(claimed)
    if not claimed:
        return report
    inputs = load_policy_inputs(uow_factory(), claimed, mailer.settings, mailer.clock.now())
    ready = _apply_policy(uow_factory(), inputs, token, mailer, report)
    if ready:
        _transmit(uow_factory, ready, token, mailer, report)
    return report


def claim(uow: UnitOfWork, ids: list[int], token: str, mailer: Mailer) -> list[int]:
    """``queued -> sending`` for the due rows among ``ids``; returns the ids claimed."""
    now = mailer.clock.now()
    lease = now + timedelta(seconds=mailer.settings.delivery_lease_seconds)
    return claim_rows(uow, ids, token, now, lease)


@dataclass(frozen=True)
class Ready:
    """A message that passed the policy, composed and waiting for its SMTP transaction."""

    message_id: int
    prospect_id: int
    composed: Composed
    step_id: str
    template_key: str
    template_version_id: int | None = None
    enrollment: EnrollmentFacts | None = None

    def outgoing(self) -> Outgoing:
        """What the send loop's writes record of it."""
        composed = self.composed
        return Outgoing(
            message_id=self.message_id,
            prospect_id=self.prospect_id,
            step_id=self.step_id,
            template_key=self.template_key,
            template_version_id=self.template_version_id,
            smtp_message_id=composed.message_id_header,
            to_addr=composed.to_addr,
            links=composed.links,
            template_checksum=composed.template_checksum,
            enrollment=self.enrollment,
        )


def _stored_template(session: Session, item: PolicyItem) -> StoredTemplate:
    """The version this message is rendered from; a template that was never stored
    fails the message with the fix."""
    if item.template_version_id is None or item.template_checksum is None:
        raise not_stored(item.template_key)
    return stored_template(
        session, item.template_version_id, item.template_checksum, item.template_key
    )


def compose_item(
    item: PolicyItem, template: StoredTemplate, mailer: Mailer, now: datetime
) -> Composed:
    """The email ``item`` becomes with ``mailer``'s renderer, signer and settings: what a
    worker sends (``bench/send.py`` calls it too, so its baseline pushes the same bytes)."""
    return compose(
        message_id=item.message_id,
        template=template,
        subject_source=item.subject,
        prospect=item.prospect,
        spec=item.spec,
        step_id=item.step_id,
        settings=mailer.settings,
        renderer=mailer.renderer,
        signer=mailer.signer,
        now=now,
        owner_name=item.owner_name,
    )


def _apply_policy(
    uow: UnitOfWork, inputs: PolicyInputs, token: str, mailer: Mailer, report: DeliveryReport
) -> list[Ready]:
    """Hold or drop what may not go now; compose what may. One commit for all of it."""
    ready: list[Ready] = []
    now = mailer.clock.now()
    with uow:
        session = uow.session
        for item in inputs.items:
            decision = inputs.decide(item, now)
            if decision is not None:
                record_hold(session, item.message_id, token, decision, now)
                report.held += decision.__class__.__name__ == "Hold"
                report.dropped += decision.__class__.__name__ == "Drop"
                continue
            try:
                composed = compose_item(item, _stored_template(session, item), mailer, now)
            except Exception as exc:  # a broken template fails this message, not the batch
                log.exception("message %s could not be composed", item.message_id)
                record_failure(session, item.message_id, token, f"compose failed: {exc}", now)
                report.failed += 1
                continue
            inputs.count_send(item, now)
            ready.append(
                Ready(
                    item.message_id,
                    item.prospect_id,
                    composed,
                    item.step_id,
                    item.template_key,
                    item.template_version_id,
                    item.enrollment,
                )
            )
        uow.commit()
    return ready


def _transmit(
    uow_factory: Callable[[], UnitOfWork],
    ready: list[Ready],
    token: str,
    mailer: Mailer,
    report: DeliveryReport,
) -> None:
    """Send one by one on one held connection: after each 250, one commit records the
    message sent and marks the next one transmitting (``delivery_writes``). An outcome
    other than sent (rare) is recorded in a transaction of its own."""
    lease = timedelta(seconds=mailer.settings.delivery_lease_seconds)
    outgoing = [item.outgoing() for item in ready]
    with Progress.held(uow_factory(), token, lease) as progress:
        marked = progress.mark(outgoing[0], mailer.clock.now())
        for index, item in enumerate(ready):
            nxt = outgoing[index + 1] if index + 1 < len(ready) else None
            outcome = _send_one(mailer, item) if marked else None
            now = mailer.clock.now()
            if marked and outcome is None:
                _, marked = progress.sent_and_mark(outgoing[index], nxt, now)
                report.sent += 1
                report.sent_ids.append(item.message_id)
                continue
            if outcome is not None:
                _record_outcome(uow_factory(), item, token, outcome, now, mailer.settings, report)
            if _server_unavailable(outcome):  # do not hammer a deferring or absent server
                _release_rest(uow_factory(), ready[index + 1 :], token, outcome, mailer, report)
                return
            marked = nxt is not None and progress.mark(nxt, now)


def _server_unavailable(outcome: Exception | None) -> bool:
    """A deferral of the whole server (not of one recipient, not an uncertain send)."""
    return isinstance(outcome, TransientSendError) and not isinstance(
        outcome, UncertainSendError | RecipientDeferredError
    )


def rate_key(recipient: str) -> str:
    """The send-rate limiter's key: the recipient's domain. Mailbox providers throttle,
    then junk, a sender by how fast mail arrives at *their* servers; keyed by our own
    domain the limit would slow every send alike and protect no receiving server."""
    return recipient.rpartition("@")[2].lower()


def _send_one(mailer: Mailer, item: Ready) -> Exception | None:
    composed = item.composed
    mailer.limiter.acquire(rate_key(composed.to_addr))
    try:
        mailer.transport.send(composed.return_path, composed.to_addr, composed.raw)
    except (TransientSendError, PermanentSendError) as exc:
        return exc
    return None


def _record_outcome(
    uow: UnitOfWork,
    item: Ready,
    token: str,
    error: Exception,
    now: datetime,
    settings: Settings,
    report: DeliveryReport,
) -> None:
    """A refusal, a deferral or an uncertain send, in a transaction of its own."""
    with uow:
        session = uow.session
        if isinstance(error, PermanentSendError):
            if error.recipient_refused:
                record_bounce(session, item.message_id, item.prospect_id, token, error, now)
            else:
                record_failure(session, item.message_id, token, f"refused: {error}", now)
            report.failed += 1
        elif isinstance(error, UncertainSendError):
            record_uncertain(session, item.message_id, token, str(error), now, settings)
            report.uncertain += 1
        elif record_retry(session, item.message_id, token, str(error), now, settings):
            report.retried += 1
        else:
            report.failed += 1
        uow.commit()


def _release_rest(
    uow: UnitOfWork,
    rest: list[Ready],
    token: str,
    error: Exception | None,
    mailer: Mailer,
    report: DeliveryReport,
) -> None:
    """Put the claimed but unsent rest back in the queue with a backoff."""
    now = mailer.clock.now()
    with uow:
        for item in rest:
            record_retry(
                uow.session,
                item.message_id,
                token,
                f"not attempted: {error}",
                now,
                mailer.settings,
            )
            report.retried += 1
        uow.commit()


__all__ = ["DeliveryReport", "Mailer", "claim", "email_step", "send_batch", "sender_of"]
