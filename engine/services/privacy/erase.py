"""Erase a person (GDPR art. 17): their data goes, the counts they are part of stay true.

The prospect row stays as an anonymous tombstone (``erased-<id>@erased.invalid``, status
``erased``) so that every email sent, open, click, ledger point and handoff still counts in
the sequence and step statistics, but nothing in it, or in any row about them, says who
they were (``coverage.PERSONAL_TABLES`` is the column-by-column verdict). The address
survives only as its SHA-256 on the suppression list: any later path that could mail it
again (enrollment, the send check, an import, an API upsert) matches the hash and refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.exceptions import InvalidInputError, NotFoundError
from engine.mail.forget import forget_messages
from engine.services.audit import record_audit
from engine.services.loading import suppression_reason
from engine.services.nurture import active_enrollment, end_enrollment
from engine.services.privacy.coverage import NOW, PERSONAL_TABLES, Person, PersonalTable
from engine.services.validation import check_line
from engine.store import (
    EnrollmentStatus,
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Prospect,
    Suppression,
    SuppressionReason,
    UnitOfWork,
    normalize_email,
)

__all__ = ["ERASED_EXIT_REASON", "ErasureReport", "erase_prospect"]

log = logging.getLogger(__name__)

ERASED_EXIT_REASON = "erased at the person's request"


@dataclass(frozen=True)
class ErasureReport:
    prospect_id: int
    erased_at: datetime
    already: bool = False  # it had been erased before: nothing changed
    rows: dict[str, int] = field(default_factory=dict)  # rows scrubbed per table
    outbox_files: int = 0  # copies of emails removed from the local outbox


def erase_prospect(
    uow: UnitOfWork,
    prospect_id: int,
    now: datetime,
    *,
    actor: str,
    outbox_dir: Path | None = None,
    request: str | None = None,
    confirm_email: str | None = None,
) -> ErasureReport:
    """Erase one prospect in one transaction; safe to repeat (then ``already``).

    In order: the address is suppressed (so nothing can mail it from the next instant on,
    whatever was in flight), the active nurture exits and every queued email is
    cancelled, open handoffs are withdrawn (no alert about them goes out), then every
    personal column is scrubbed. ``outbox_dir`` (laptop mode) also loses its copies of
    the emails sent to, or about, the person. The audit log gets one entry naming the
    prospect by id and ``request`` (the requester's reference, never personal data).
    ``confirm_email``, when given, must be the prospect's address (a person typed it to
    show they mean this one): otherwise InvalidInputError and nothing happens.
    """
    request = _requester_reference(request)
    with uow:
        session = uow.session
        prospect = _locked_prospect(uow, prospect_id)
        if prospect.erased_at is not None:
            return ErasureReport(prospect_id, prospect.erased_at, already=True)
        if confirm_email is not None and normalize_email(confirm_email) != prospect.email:
            raise InvalidInputError(
                "confirm: type the prospect's email address exactly, to show it is this one"
            )
        person = Person(prospect.id, prospect.email)
        _suppress(session, person.email, now)
        _stop_everything(session, prospect.id, now)
        message_ids, handoff_ids = _outbox_keys(session, prospect.id)
        session.flush()
        rows = {table.table_name: _scrub(session, table, person, now) for table in PERSONAL_TABLES}
        _audit(session, prospect_id, now, actor=actor, rows=rows, request=request)
        session.expunge(prospect)
        uow.commit()
    removed = 0
    if outbox_dir is not None:
        removed = _forget_outbox(outbox_dir, person.email, message_ids, handoff_ids, prospect_id)
    log.info(
        "prospect %s erased (%s)", prospect_id, ", ".join(f"{k}: {v}" for k, v in rows.items())
    )
    return ErasureReport(prospect_id, now, rows=rows, outbox_files=removed)


def _audit(
    session: Session,
    prospect_id: int,
    now: datetime,
    *,
    actor: str,
    rows: dict[str, int],
    request: str | None,
) -> None:
    """The one trace an erasure leaves: who, when, how many rows, the requester's
    reference; the person only by id, which the tombstone no longer ties to anyone."""
    record_audit(
        session,
        actor=actor,
        action="prospect.erased",
        subject=f"prospect:{prospect_id}",
        summary=f"Erased prospect {prospect_id} at the person's request (GDPR art. 17)",
        now=now,
        details={"rows_scrubbed": rows, "request": request},
    )


def _requester_reference(request: str | None) -> str | None:
    """The requester's reference goes into the audit log, so it is held to one clean line
    (and 200 characters) before anything is touched: a bad one refuses the whole erasure."""
    if request is None:
        return None
    try:
        return check_line(request.strip())[:200] or None
    except ValueError as exc:
        raise InvalidInputError(f"request: {exc}") from None


def _locked_prospect(uow: UnitOfWork, prospect_id: int) -> Prospect:
    """The prospect, row-locked on PostgreSQL so a concurrent upsert or erasure waits."""
    stmt = select(Prospect).where(Prospect.id == prospect_id)
    prospect = uow.session.scalars(stmt.with_for_update() if uow.is_postgres else stmt).first()
    if prospect is None:
        raise NotFoundError(f"prospect {prospect_id} not found")
    return prospect


def _outbox_keys(session: Session, prospect_id: int) -> tuple[list[str], list[int]]:
    """The Message-IDs and handoff ids the outbox copies are found by, read before the
    scrub blanks them."""
    message_ids = [
        m
        for (m,) in session.execute(
            select(Message.smtp_message_id).where(
                Message.prospect_id == prospect_id, Message.smtp_message_id.is_not(None)
            )
        )
    ]
    handoff_ids = list(
        session.scalars(select(Handoff.id).where(Handoff.prospect_id == prospect_id))
    )
    return message_ids, handoff_ids


def _forget_outbox(
    outbox_dir: Path,
    address: str,
    message_ids: list[str],
    handoff_ids: list[int],
    prospect_id: int,
) -> int:
    """Remove the local outbox's copies after the commit; a failure here is logged, not
    raised: the database erasure stands, and the log says what is left behind."""
    try:
        return forget_messages(
            outbox_dir, address=address, message_ids=message_ids, handoff_ids=handoff_ids
        )
    except OSError as exc:
        log.error("prospect %s erased, but the outbox copies were not: %s", prospect_id, exc)
        return 0


def _suppress(session: Session, email: str, now: datetime) -> None:
    """The hash must be on the list before anything else changes: a worker that claims
    a message meanwhile finds the address suppressed and drops it."""
    if suppression_reason(session, email) is None:
        session.add(Suppression(email=email, reason=SuppressionReason.ERASED, created_at=now))


def _stop_everything(session: Session, prospect_id: int, now: datetime) -> None:
    active = active_enrollment(session, prospect_id, lock=True)
    if active is not None:
        end_enrollment(active, EnrollmentStatus.EXITED, ERASED_EXIT_REASON, now, may_return=False)
    # Also the last email of a completed sequence, which completion leaves queued.
    session.execute(
        update(Message)
        .where(Message.prospect_id == prospect_id, Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.CANCELLED)
    )
    session.execute(
        update(Handoff)
        .where(
            Handoff.prospect_id == prospect_id,
            Handoff.status.in_([HandoffStatus.OPEN, HandoffStatus.OVERDUE]),
        )
        .values(status=HandoffStatus.WITHDRAWN, decided_at=now, decided_by="erasure")
    )


def _scrub(session: Session, table: PersonalTable, person: Person, now: datetime) -> int:
    """Apply the table's verdicts: one UPDATE for fixed values, one bulk UPDATE by id for
    values computed from the row."""
    model = table.model
    fixed = {
        name: (now if value is NOW else value)
        for name, value in table.scrub.items()
        if not callable(value)
    }
    computed = {name: value for name, value in table.scrub.items() if callable(value)}
    where = table.rows(person)
    ids_and_values: list[Mapping[str, Any]] = []
    if computed:
        needed = sorted({"id", *computed} | _inputs(table))
        for row in session.execute(select(*(getattr(model, n) for n in needed)).where(where)):
            values = dict(zip(needed, row, strict=True))
            ids_and_values.append(
                {"id": values["id"], **{n: f(values) for n, f in computed.items()}}
            )
    count = 0
    if fixed:
        result = session.execute(
            update(model).where(where).values(**fixed).execution_options(synchronize_session=False)
        )
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if ids_and_values:
        session.execute(update(model), ids_and_values)
        count = max(count, len(ids_and_values))
    return count


def _inputs(table: PersonalTable) -> set[str]:
    """Columns the computed scrubs read (each reads its own column, the email its id)."""
    return {name for name, value in table.scrub.items() if callable(value)}
