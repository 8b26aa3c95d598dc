"""The periodic tick: advance every due enrollment, in batches, safely from many processes.

Due rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two ticks running at
once (two schedulers, a slow run overlapping the next) split the work instead of doubling
it; the enrollment's version column is the second guard. SQLite serialises writers.

A batch costs a fixed number of statements, whatever its size: the claim (with the
versions' checksums), one query per kind of fact (the prospects' fields the conditions
read, the events they can see, the outbox's unsent mail with the cap's counts), the
decisions in the pure core (:mod:`engine.core.tick_batch`), then one UPDATE of every
enrollment with its version check, one INSERT of the outbox rows and, when some exit, one
UPDATE cancelling their queued mail (:mod:`engine.services.tick_writes`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic_core import from_json
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from engine.core.decisions import Exit, ExitKind, WakeAt
from engine.core.enrollment import reentry_at
from engine.core.facts import EventFact
from engine.core.policy import FrequencyCap
from engine.core.tick_batch import (
    BatchPlan,
    CapCount,
    DueEnrollment,
    StepPlan,
    apply_cap,
    earliest_event_seen,
    events_seen_by,
    fields_read_by,
    plan_batch,
)
from engine.services.enrollment_steps import StepReport, outbox_rows
from engine.services.loading import (
    PROSPECT_FACT_FIELDS,
    events_by_prospect,
    ids_in,
    spec_by_checksum,
)
from engine.services.policy_facts import CapUsage, load_outbox_facts
from engine.services.template_versions import current_version_ids
from engine.services.tick_writes import EnrollmentWrite, cancel_queued_mail, write_batch
from engine.spec.sequence import SequenceSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Prospect,
    Sequence,
    SequenceStatus,
    SequenceVersion,
    UnitOfWork,
    end_read,
)

log = logging.getLogger(__name__)

# An enrollment whose step raises is parked this long instead of blocking the tick.
ERROR_RETRY = timedelta(minutes=15)


@dataclass
class TickReport(StepReport):
    batches: int = 0
    deferred: int = 0  # enrollments that wait at an email step for the frequency cap
    errors: int = 0
    error_ids: list[int] = field(default_factory=list)


def tick(
    uow_factory: Callable[[], UnitOfWork],
    now: datetime,
    batch_size: int = 500,
    max_batches: int | None = None,
    cap: FrequencyCap | None = None,
) -> TickReport:
    """Advance enrollments due at ``now``; one transaction per batch.

    Safe to run concurrently and to re-run after a crash: a batch either commits whole or
    not at all, and an advanced enrollment's ``next_run_at`` moves past ``now``. With the
    frequency ``cap``, no email is queued that the cap would hold past the enrollment's
    next move (:func:`engine.core.policy.cap_defers_step`): the enrollment waits instead.
    """
    report = TickReport()
    while max_batches is None or report.batches < max_batches:
        with _collector_paused():
            done = _batch(uow_factory(), now, batch_size, report, cap)
        if done < batch_size:
            break
    if report.advanced or report.errors:
        log.info(
            "tick %s: advanced %d, queued %d emails, %d exited, %d errors",
            now.isoformat(),
            report.advanced,
            report.emails_queued,
            report.exited,
            report.errors,
        )
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one batch, back as it was after.

    A batch allocates some hundred thousand short-lived objects (rows, facts, states, the
    JSON documents): the collector ran every 700 allocations and, scanning the survivors
    each time, took over a quarter of the tick's CPU (``bench/tick.py``). Whatever cycles
    the batch leaves are collected once it is re-enabled, so memory stays bounded by a
    batch."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _batch(
    uow: UnitOfWork, now: datetime, batch_size: int, report: TickReport, cap: FrequencyCap | None
) -> int:
    """Claim, decide and write one batch: a fixed number of statements whatever its size."""
    with uow:
        session = uow.session
        claimed = _claim(uow, now, batch_size)
        if not claimed:  # every tick's last batch: see engine.store.uow.end_read
            end_read(uow)
            return 0
        outbox = load_outbox_facts(
            session,
            {row.id: row.prospect_id for row in claimed},
            now,
            None if cap is None else cap.window,
        )
        # Untraced: the batch writes each decision and its exit reason, never the story.
        plan = plan_batch(_due(session, claimed, outbox.unsent, now), now, trace=False)
        if cap is not None:
            apply_cap(plan, _cap_counts(outbox.usage, plan.mailing_prospects()), cap, now)
        lock_versions = {row.id: row.lock_version for row in claimed}
        writes = [_write(step, lock_versions[step.enrollment.id], now) for step in plan.steps]
        written, message_ids = write_batch(session, writes, _messages(session, plan, now))
        cancel_queued_mail(session, _count(plan, written, report))
        report.emails_queued += len(message_ids)
        report.message_ids += message_ids
        uow.commit()
        report.batches += 1
        return len(claimed)


class Claimed(NamedTuple):
    """A claimed enrollment's columns, as a plain tuple: read a dozen times per row by the
    batch's Python, where a SQLAlchemy ``Row``'s named access costs a lookup each time."""

    id: int
    prospect_id: int
    sequence_version_id: int
    cursor: int
    state: str | None  # the JSON text, parsed by ``_due`` (pydantic-core: a fifth the time)
    enrolled_at: datetime
    lock_version: int
    checksum: str | None


def _claim(uow: UnitOfWork, now: datetime, batch_size: int) -> list[Claimed]:
    """The batch's due rows, locked (``SKIP LOCKED``): plain columns, no ORM objects,
    with their version's checksum (a missing version reads as None)."""
    stmt = (
        select(
            Enrollment.id,
            Enrollment.prospect_id,
            Enrollment.sequence_version_id,
            Enrollment.cursor,
            # As text: psycopg's loader is the standard library's json.loads, five times
            # slower than pydantic-core's parser that ``_due`` uses.
            cast(Enrollment.state, Text),
            Enrollment.enrolled_at,
            Enrollment.lock_version,
            # The version's checksum, to find its spec in the process's cache: a
            # subquery, not a join, so FOR UPDATE locks enrollments only.
            select(SequenceVersion.checksum)
            .where(SequenceVersion.id == Enrollment.sequence_version_id)
            .scalar_subquery()
            .label("checksum"),
        )
        .where(
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_run_at <= now,
            # A paused sequence's enrollments stay where they are until it is resumed
            # (a subquery, not a join: FOR UPDATE must lock enrollments only).
            Enrollment.sequence_id.not_in(
                select(Sequence.id).where(Sequence.status != SequenceStatus.ACTIVE.value)
            ),
        )
        .order_by(Enrollment.next_run_at, Enrollment.id)
        .limit(batch_size)
    )
    # Through the session's Core connection: plain columns need none of the ORM's result
    # machinery (a third of a millisecond a statement).
    rows = uow.session.connection().execute(uow.skip_locked(stmt))
    return [Claimed._make(row) for row in rows]


def _due(
    session: Session, claimed: list[Claimed], unsent: dict[int, set[str]], now: datetime
) -> list[DueEnrollment]:
    """Everything the batch's steps look at, one query per kind of fact: the prospects'
    fields the specs' conditions read, their events (those the conditions can see); each
    version's spec from the process's cache (a version not seen yet is parsed once). The
    outbox's ``unsent`` steps come with the cap's counts (``load_outbox_facts``)."""
    specs, broken = _specs(session, {row.sequence_version_id: row.checksum for row in claimed})
    prospects = _prospects(
        session,
        {row.prospect_id for row in claimed},
        frozenset().union(*(fields_read_by(spec) for spec in specs.values())),
    )
    seen = frozenset().union(*(events_seen_by(spec) for spec in specs.values()))
    started: dict[int, datetime] = {}  # per version: its enrollments' earliest start
    for row in claimed:
        vid = row.sequence_version_id
        if vid in specs:
            started[vid] = min(started.get(vid, row.enrolled_at), row.enrolled_at)
    since = min((earliest_event_seen(specs[v], at, now) for v, at in started.items()), default=now)
    events = events_by_prospect(session, prospects, types=seen, since=since)
    no_events: tuple[EventFact, ...] = ()
    no_steps: frozenset[str] = frozenset()
    return [
        DueEnrollment(
            id=row.id,
            prospect_id=row.prospect_id,
            sequence_version_id=row.sequence_version_id,
            spec=specs.get(row.sequence_version_id),
            spec_error=""
            if row.sequence_version_id in specs
            else broken.get(
                row.sequence_version_id, f"sequence version {row.sequence_version_id} is missing"
            ),
            cursor=row.cursor,
            state=(from_json(row.state) if row.state else None) or {},
            enrolled_at=row.enrolled_at,
            prospect=prospects[row.prospect_id],
            events=events.get(row.prospect_id, no_events),
            unsent=frozenset(unsent[row.id]) if row.id in unsent else no_steps,
        )
        for row in claimed
    ]


def _prospects(
    session: Session, ids: set[int], fields: frozenset[str]
) -> dict[int, dict[str, Any]]:
    """Each prospect's facts as the conditions name them, limited to ``fields`` (those the
    batch's specs read, :func:`engine.core.tick_batch.fields_read_by`), and its ``id``,
    which draws its variant at a split step (``engine.core.splits.unit_of``). No query when
    no condition reads a field."""
    names = [name for name in PROSPECT_FACT_FIELDS if name in fields]
    if not names:
        return {pid: {"id": pid} for pid in ids}
    columns = [PROSPECT_FACT_FIELDS[name] for name in names]
    rows = session.connection().execute(
        select(Prospect.id, *columns).where(ids_in(session, Prospect.id, ids))
    )
    found = {}
    for pid, *values in rows:
        facts = dict(zip(names, values, strict=True))
        if "attributes" in facts:
            facts["attributes"] = dict(facts["attributes"] or {})
        facts["id"] = pid
        found[pid] = facts
    return found


def _specs(
    session: Session, checksums: dict[int, str | None]
) -> tuple[dict[int, SequenceSpec], dict[int, str]]:
    """Each version's spec, and why for those that cannot be read (a stored spec the
    current language no longer accepts): their enrollments fail alone, not the batch."""
    specs: dict[int, SequenceSpec] = {}
    broken: dict[int, str] = {}
    for vid, checksum in checksums.items():
        if checksum is None:  # no such version: its enrollments fail as "missing"
            continue
        try:
            specs[vid] = spec_by_checksum(session, vid, checksum)
        except Exception as exc:  # one bad version must not stall every sequence
            broken[vid] = f"sequence version {vid} cannot be read: {exc}"
    return specs, broken


def _cap_counts(usage: dict[int, CapUsage], mailing: set[int]) -> dict[int, CapCount]:
    """The cap's count for every prospect of the batch about to queue mail that has any."""
    return {pid: CapCount(tuple(u.sends), u.pending) for pid, u in usage.items() if pid in mailing}


# The statuses as plain strings: the batch's JSON encoder takes an enum's slow path.
_ACTIVE = EnrollmentStatus.ACTIVE.value
_COMPLETED = EnrollmentStatus.COMPLETED.value
_EXITED = EnrollmentStatus.EXITED.value


def _write(step: StepPlan, lock_version: int, now: datetime) -> EnrollmentWrite:
    """The enrollment's row after its decision (as ``nurture.apply_step`` would leave it)."""
    item = step.enrollment
    advanced = step.advance
    if advanced is not None:
        outcome = advanced.outcome
        if isinstance(outcome, WakeAt):
            return EnrollmentWrite(
                item.id,
                lock_version,
                _ACTIVE,
                advanced.state.cursor,
                advanced.state.to_json(),
                outcome.at,
                None,
                None,
                now,
            )
        status = _COMPLETED if outcome.kind is ExitKind.COMPLETED else _EXITED
        state = advanced.state.to_json()
        return EnrollmentWrite(
            item.id,
            lock_version,
            status,
            advanced.state.cursor,
            state,
            None,
            now,
            outcome.reason,
            now,
            reentry_at(item.spec.enroll.reenroll_after, now) if item.spec else None,
        )
    if step.error is not None:  # parked, its state untouched but for why
        state, next_run_at = {**item.state, "error": step.error}, now + ERROR_RETRY
    else:  # deferred by the cap: the step runs then, state untouched
        state, next_run_at = dict(item.state), step.deferred_until
    return EnrollmentWrite(
        item.id,
        lock_version,
        _ACTIVE,
        item.cursor,
        state,
        next_run_at,
        None,
        None,
        now,
    )


def _messages(session: Session, plan: BatchPlan, now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of every step that queues mail (``write_batch`` keeps those of the
    enrollments it writes)."""
    versions: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for step in plan.steps:
        if step.advance is not None and step.advance.emails:
            if not versions:
                versions = current_version_ids(session)
            rows += outbox_rows(step.enrollment, step.advance, now, versions)
    return rows


def _count(plan: BatchPlan, written: set[int], report: TickReport) -> list[int]:
    """Count the enrollments written into ``report``; return those that exited, whose
    queued mail is cancelled. One that was not written lost a race to another process,
    which carried its step out."""
    exited: list[int] = []
    for step in plan.steps:
        item = step.enrollment
        if item.id not in written:
            log.warning("enrollment %s was advanced by another process meanwhile", item.id)
            continue
        if step.error is not None:
            log.error("enrollment %s failed to advance: %s", item.id, step.error)
            report.errors += 1
            report.error_ids.append(item.id)
        elif step.deferred_until is not None:
            report.deferred += 1
        elif step.advance is not None:
            report.advanced += 1
            outcome = step.advance.outcome
            if isinstance(outcome, Exit):
                report.exited += 1
                if outcome.kind is ExitKind.EXITED:
                    exited.append(item.id)
    return exited
