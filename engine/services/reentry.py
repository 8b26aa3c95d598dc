"""The re-entry sweep: a prospect whose ``reenroll_after`` wait is over is reconsidered.

A sequence that says "they may enter again 90 days after they left" used to keep that
promise only when something else touched the prospect (a CRM update, an event a sequence
looks at). Every path that ends an enrollment now stamps it with the moment its sequence
may take the prospect back (``Enrollment.reenroll_at``: the tick's set-based exits,
``engine.services.enrollment_steps.end_enrollment`` for the others); this sweep, run by every
``tick_job``, finds the stamps that are due through their partial index and runs the
ordinary enrollment rules for their prospects, a batch at a time
(:func:`engine.services.imports.batch.reconsider_prospects`, which the CSV import uses):
opted out, suppressed, erased, no longer matching or with sales, the prospect stays out,
exactly as on any other path. A wait the batch cannot settle is stamped again rather than
forgotten: held back by a running nurture of equal or higher priority (one at a time), it
is looked at again at that nurture's next move, so the prospect re-enters once it ends;
lengthened by a new version, at its new end.

Concurrency: a batch claims its due stamps and then their prospects, both with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (the prospect row is the one an event or a CRM
update locks before deciding), so two sweeps, or a sweep and an event, never decide for
one prospect at once and never wait on each other; one UPDATE then clears the claimed
stamps that are still due and returns them, which is the batch. On SQLite that UPDATE is
the transaction's first write and SQLite serialises writers: a second sweep that read the
same stamps finds them cleared. The partial unique index on active enrollments backs it
all up.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session

from engine.core.enrollment import SequenceOption, reentry_at
from engine.services.imports.batch import reconsider_prospects
from engine.services.loading import active_options, ids_in
from engine.store import Enrollment, EnrollmentStatus, Prospect, UnitOfWork, end_read
from engine.store import Sequence as SequenceRow

log = logging.getLogger(__name__)

__all__ = ["ERROR_RETRY", "HELD_RECHECK", "ReentryReport", "reenter_due"]

ERROR_RETRY = timedelta(minutes=15)
"""How long a prospect whose reconsideration raised waits before the sweep tries again."""

HELD_RECHECK = timedelta(hours=1)
"""When a nurture holding a prospect back has no next move ahead (its sequence is paused,
or the tick is behind), how long until the sweep looks again."""


@dataclass
class ReentryReport:
    """What a sweep did: prospects reconsidered, enrolled, and those that failed."""

    batches: int = 0
    reconsidered: int = 0
    enrolled: int = 0
    failed_batches: int = 0  # redone one prospect at a time
    errors: int = 0
    error_ids: list[int] = field(default_factory=list)  # prospects


class _Cleared(NamedTuple):
    id: int
    prospect_id: int
    sequence_id: int
    ended_at: datetime | None


def reenter_due(
    uow_factory: Callable[[], UnitOfWork],
    now: datetime,
    batch_size: int = 200,
    max_batches: int | None = None,
) -> ReentryReport:
    """Reconsider every prospect with a re-entry due at ``now``; one transaction a batch.

    Idempotent and safe to run concurrently or again after a crash: a batch clears its
    stamps in the transaction that decides, so it commits whole or leaves them due. A
    batch that raises is retried one prospect at a time, so one bad row cannot stall the
    others: the prospect that fails alone is retried after :data:`ERROR_RETRY`.
    """
    report = ReentryReport()
    while max_batches is None or report.batches < max_batches:
        try:
            done = _batch(uow_factory(), now, batch_size, report)
        except Exception:
            log.exception("re-entry sweep at %s: a batch failed, one by one", now.isoformat())
            report.failed_batches += 1
            done = _one_by_one(uow_factory, now, batch_size, report)
        if done < batch_size:
            break
    if report.reconsidered or report.errors:
        log.info(
            "re-entry sweep %s: %d prospects reconsidered, %d enrolled, %d errors",
            now.isoformat(),
            report.reconsidered,
            report.enrolled,
            report.errors,
        )
    return report


def _live_sequences() -> ColumnElement[bool]:
    """Stamps of sequences taking prospects in: a paused sequence's wait for re-entry keeps
    until it is resumed (as its enrollments' steps do), an archived one has none."""
    return Enrollment.sequence_id.in_(select(SequenceRow.id).where(SequenceRow.active))


def _due_stamps(now: datetime) -> Select[tuple[int, int]]:
    """The due stamps (enrollment id, prospect id), earliest first."""
    return (
        select(Enrollment.id, Enrollment.prospect_id)
        .where(Enrollment.reenroll_at <= now, _live_sequences())
        .order_by(Enrollment.reenroll_at, Enrollment.id)
    )


def _batch(
    uow: UnitOfWork,
    now: datetime,
    batch_size: int,
    report: ReentryReport,
    only: int | None = None,
) -> int:
    """Claim, reconsider and re-stamp one batch (or the prospect ``only``); returns how
    many stamps it found due."""
    with uow:
        session = uow.session
        stmt = _due_stamps(now).limit(batch_size)
        if only is not None:
            stmt = stmt.where(Enrollment.prospect_id == only)
        stamps = session.execute(uow.skip_locked(stmt, of=Enrollment)).all()
        if not stamps:  # every tick's last batch: see engine.store.uow.end_read
            end_read(uow)
            return 0
        locked = set(
            session.scalars(
                uow.skip_locked(
                    select(Prospect.id)
                    .where(ids_in(session, Prospect.id, {pid for _, pid in stamps}))
                    .order_by(Prospect.id)
                )
            )
        )
        cleared = _clear(session, [sid for sid, pid in stamps if pid in locked], now)
        claimed = sorted({row.prospect_id for row in cleared})
        prospects = list(
            session.scalars(
                select(Prospect)
                .where(ids_in(session, Prospect.id, claimed), Prospect.erased_at.is_(None))
                .order_by(Prospect.id)
            )
        )
        if prospects:
            report.enrolled += reconsider_prospects(session, prospects, set(), now, lock=True)
        _restamp(session, cleared, now)
        uow.commit()
        report.batches += 1
        report.reconsidered += len(claimed)
        # Nothing cleared: every prospect was held by another transaction; looking again at
        # once would find the same stamps, so the run ends and the next tick retries them.
        return len(stamps) if cleared else 0


def _clear(session: Session, stamp_ids: Sequence[int], now: datetime) -> list[_Cleared]:
    """Clear the claimed stamps (only those: a stamp row another sweep locked is never
    waited on); the rows still due, and so cleared, are the batch. On SQLite this is the
    first write: a sweep that read the same stamps before another cleared them gets none."""
    if not stamp_ids:
        return []
    rows = session.execute(
        update(Enrollment)
        .where(ids_in(session, Enrollment.id, stamp_ids), Enrollment.reenroll_at <= now)
        .values(reenroll_at=None, updated_at=now)
        .returning(
            Enrollment.id, Enrollment.prospect_id, Enrollment.sequence_id, Enrollment.ended_at
        )
        .execution_options(synchronize_session=False)
    )
    return [_Cleared._make(row) for row in rows]


class _Running(NamedTuple):
    sequence_id: int
    next_run_at: datetime | None


def _restamp(session: Session, cleared: list[_Cleared], now: datetime) -> None:
    """Stamp again the waits the batch could not settle, instead of forgetting them: one
    lengthened since the prospect left (a new version's ``reenroll_after``) for when it
    ends, and one held back by a nurture of equal or higher priority (one at a time) for
    that nurture's next move, when it may end and free them. One statement for the
    running nurtures, one per distinct new moment, usually none."""
    options = {o.sequence_id: o for o in active_options(session)}
    running = {
        pid: _Running(sequence_id, next_run_at)
        for pid, sequence_id, next_run_at in session.execute(
            select(Enrollment.prospect_id, Enrollment.sequence_id, Enrollment.next_run_at).where(
                ids_in(session, Enrollment.prospect_id, {row.prospect_id for row in cleared}),
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
    }
    later: dict[datetime, list[int]] = defaultdict(list)
    for row in cleared:
        due = _next_look(row, options, running.get(row.prospect_id), now)
        if due is not None:
            later[due].append(row.id)
    for due, ids in later.items():
        session.execute(
            update(Enrollment)
            .where(ids_in(session, Enrollment.id, ids))
            .values(reenroll_at=due, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _next_look(
    row: _Cleared,
    options: dict[int, SequenceOption],
    running: _Running | None,
    now: datetime,
) -> datetime | None:
    """When the sweep should look at this wait again, or None when it is settled."""
    option = options.get(row.sequence_id)
    if option is None or row.ended_at is None:
        return None
    looks = []
    wait_ends = reentry_at(option.spec.enroll.reenroll_after, row.ended_at)
    if wait_ends is not None and wait_ends > now:
        looks.append(wait_ends)
    if running is not None and running.sequence_id != row.sequence_id:
        other = options.get(running.sequence_id)  # None: paused, it holds them too
        if other is None or other.priority >= option.priority:
            next_move = running.next_run_at
            looks.append(next_move if next_move and next_move > now else now + HELD_RECHECK)
    return min(looks, default=None)


def _one_by_one(
    uow_factory: Callable[[], UnitOfWork], now: datetime, batch_size: int, report: ReentryReport
) -> int:
    """After a failed batch: each of its prospects in a transaction of its own; one that
    still fails has its due stamps moved :data:`ERROR_RETRY` on. The run stops after it
    (returns 0), so a failure costs one batch's work a tick, never a loop."""
    with uow_factory() as uow:
        stmt = _due_stamps(now).limit(batch_size)
        candidates = sorted({pid for _, pid in uow.session.execute(stmt)})
    for prospect_id in candidates:
        try:
            _batch(uow_factory(), now, 1, report, only=prospect_id)
        except Exception:
            log.exception("re-entry of prospect %s failed", prospect_id)
            report.errors += 1
            report.error_ids.append(prospect_id)
            _park(uow_factory(), prospect_id, now)
    return 0  # this run ends here: the next tick's sweep takes what is left


def _park(uow: UnitOfWork, prospect_id: int, now: datetime) -> None:
    with uow:
        uow.session.execute(
            update(Enrollment)
            .where(Enrollment.prospect_id == prospect_id, Enrollment.reenroll_at <= now)
            .values(reenroll_at=now + ERROR_RETRY, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        uow.commit()
