"""The sequence pages' read side: the list with its figures, and one sequence in full.

Both cost a fixed few statements whatever the number of sequences or prospects: counts
are grouped in the database (by sequence for the list, by version and step for a
sequence), never a query per row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.wording import (
    say_enrollment,
    say_exit,
    say_priority,
    say_reenrollment,
    say_send_window,
)
from engine.exceptions import NotFoundError
from engine.services.loading import spec_by_checksum
from engine.services.views.sequence_flow import Flow, StepCounts, build_flow
from engine.spec.sequence import SequenceSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Handoff,
    Message,
    MessageStatus,
    Sequence,
    SequenceStatus,
    SequenceVersion,
    UnitOfWork,
)

__all__ = [
    "RECENT",
    "ExitRow",
    "PlainWords",
    "SequencePage",
    "SequenceRow",
    "list_view",
    "plain_words",
    "sequence_page",
]

RECENT = timedelta(days=30)
_STATUS_ORDER = {SequenceStatus.ACTIVE: 0, SequenceStatus.PAUSED: 1, SequenceStatus.ARCHIVED: 2}


@dataclass(frozen=True)
class SequenceRow:
    key: str
    name: str
    status: str
    version: int | None
    in_now: int
    sent_recently: int
    handoffs_recently: int
    updated_at: datetime


def list_view(uow: UnitOfWork, now: datetime) -> list[SequenceRow]:
    """Every sequence: active first, then paused, then archived, each by name."""
    since = now - RECENT
    with uow:
        s = uow.session
        rows = s.execute(
            select(Sequence.id, Sequence.key, Sequence.name, Sequence.status, Sequence.updated_at)
            .add_columns(SequenceVersion.version)
            .outerjoin(SequenceVersion, SequenceVersion.id == Sequence.current_version_id)
        ).all()
        in_now = dict(
            s.execute(
                select(Enrollment.sequence_id, func.count())
                .where(Enrollment.status == EnrollmentStatus.ACTIVE)
                .group_by(Enrollment.sequence_id)
            ).all()
        )
        sent = dict(
            s.execute(
                select(SequenceVersion.sequence_id, func.count())
                .select_from(Message)
                .join(SequenceVersion, SequenceVersion.id == Message.sequence_version_id)
                .where(Message.status == MessageStatus.SENT, Message.sent_at >= since)
                .group_by(SequenceVersion.sequence_id)
            ).all()
        )
        handoffs = dict(
            s.execute(
                select(Handoff.sequence_id, func.count())
                .where(Handoff.created_at >= since, Handoff.sequence_id.is_not(None))
                .group_by(Handoff.sequence_id)
            ).all()
        )
    out = [
        SequenceRow(
            key,
            name,
            str(status),
            version,
            in_now.get(seq_id, 0),
            sent.get(seq_id, 0),
            handoffs.get(seq_id, 0),
            updated_at,
        )
        for seq_id, key, name, status, updated_at, version in rows
    ]
    out.sort(key=lambda r: (_STATUS_ORDER.get(SequenceStatus(r.status), 3), r.name.casefold()))
    return out


@dataclass(frozen=True)
class PlainWords:
    """The rules beside the diagram, as sentences."""

    enters: str
    leaves: str
    reenrolls: str
    priority: str
    window: str


def plain_words(spec: SequenceSpec) -> PlainWords:
    return PlainWords(
        say_enrollment(spec.enroll),
        say_exit(spec),
        say_reenrollment(spec.enroll),
        say_priority(spec.enroll),
        say_send_window(spec.send_window),
    )


@dataclass(frozen=True)
class ExitRow:
    step: str
    status: str
    reason: str
    count: int


@dataclass(frozen=True)
class SequencePage:
    id: int
    key: str
    name: str
    description: str | None
    status: str
    version: int
    version_id: int
    versions: int
    published_at: datetime
    published_by: str | None
    spec: SequenceSpec
    words: PlainWords
    flow: Flow
    in_now: int
    exits: list[ExitRow]
    other_versions_running: int  # prospects still on an older version

    @property
    def active(self) -> bool:
        return self.status == SequenceStatus.ACTIVE


def sequence_page(uow: UnitOfWork, key: str) -> SequencePage:
    """One sequence: its current version laid out, with every step's figures."""
    with uow:
        s = uow.session
        sequence = s.scalars(select(Sequence).where(Sequence.key == key)).first()
        if sequence is None or sequence.current_version_id is None:
            raise NotFoundError(f"no sequence {key!r}")
        versions = {
            vid: (number, checksum, created_at, created_by)
            for vid, number, checksum, created_at, created_by in s.execute(
                select(
                    SequenceVersion.id,
                    SequenceVersion.version,
                    SequenceVersion.checksum,
                    SequenceVersion.created_at,
                    SequenceVersion.created_by,
                ).where(SequenceVersion.sequence_id == sequence.id)
            )
        }
        specs = {vid: spec_by_checksum(s, vid, v[1]) for vid, v in versions.items()}
        counts, exits, on_old = _step_figures(s, sequence.id, specs, sequence.current_version_id)
        current = sequence.current_version_id
        number, _, created_at, created_by = versions[current]
        spec = specs[current]
        return SequencePage(
            id=sequence.id,
            key=sequence.key,
            name=sequence.name,
            description=spec.description,
            status=str(sequence.status),
            version=number,
            version_id=current,
            versions=len(versions),
            published_at=created_at,
            published_by=created_by,
            spec=spec,
            words=plain_words(spec),
            flow=build_flow(spec, counts),
            in_now=sum(c.waiting for c in counts.values()),
            exits=exits,
            other_versions_running=on_old,
        )


def _step_at(spec: SequenceSpec, cursor: int) -> str:
    ids = spec.step_ids()
    return ids[cursor] if 0 <= cursor < len(ids) else "(the end)"


Figures = dict[str, dict[str, int]]


def _step_figures(
    s: Session, sequence_id: int, specs: dict[int, SequenceSpec], current: int
) -> tuple[dict[str, StepCounts], list[ExitRow], int]:
    """Per step id, over every version: three grouped statements (who waits where, what
    the emails did, who left where), each adding its columns to the step's figures."""
    figures: Figures = defaultdict(lambda: defaultdict(int))
    on_old = _count_waiting(s, specs, current, figures)
    _count_emails(s, list(specs), figures)
    exits = _count_exits(s, specs, figures)
    counts = {step: replace(StepCounts(), **values) for step, values in figures.items()}
    rows = [ExitRow(step, status, reason, n) for (step, status, reason), n in exits.items()]
    rows.sort(key=lambda r: -r.count)
    return counts, rows, on_old


def _count_waiting(
    s: Session, specs: dict[int, SequenceSpec], current: int, figures: Figures
) -> int:
    """Active enrollments per step; returns how many of them are on an older version."""
    on_old = 0
    for vid, cursor, count in s.execute(
        select(Enrollment.sequence_version_id, Enrollment.cursor, func.count())
        .where(
            Enrollment.sequence_version_id.in_(list(specs)),
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(Enrollment.sequence_version_id, Enrollment.cursor)
    ):
        figures[_step_at(specs[vid], cursor)]["waiting"] += count
        on_old += count if vid != current else 0
    return on_old


def _count_emails(s: Session, version_ids: list[int], figures: Figures) -> None:
    """Sent, and opened (clicked) at least once by a person / by a machine: one row per
    email, its engagement stamps (engine.services.message_stamps), read from the
    covering ix_messages_version_engagement instead of every event of every email."""
    names = ("sent", "human_opens", "machine_opens", "human_clicks", "machine_clicks")
    for step_id, *values in s.execute(
        select(
            Message.step_id,
            func.count().filter(Message.status == MessageStatus.SENT),
            func.count(Message.first_opened_at),
            func.count().filter(Message.machine_opens > 0),
            func.count(Message.first_clicked_at),
            func.count().filter(Message.machine_clicks > 0),
        )
        .where(Message.sequence_version_id.in_(version_ids))
        .group_by(Message.step_id)
    ):
        for name, count in zip(names, values, strict=True):
            if count:
                figures[step_id][name] += count


def _count_exits(
    s: Session, specs: dict[int, SequenceSpec], figures: Figures
) -> dict[tuple[str, str, str], int]:
    """Finished enrollments per step (handed off, completed or exited), and per (step,
    status, reason) for the exits table."""
    exits: dict[tuple[str, str, str], int] = defaultdict(int)
    for vid, cursor, status, reason, count in s.execute(
        select(
            Enrollment.sequence_version_id,
            Enrollment.cursor,
            Enrollment.status,
            Enrollment.exit_reason,
            func.count(),
        )
        .where(
            Enrollment.sequence_version_id.in_(list(specs)),
            Enrollment.status != EnrollmentStatus.ACTIVE,
        )
        .group_by(
            Enrollment.sequence_version_id,
            Enrollment.cursor,
            Enrollment.status,
            Enrollment.exit_reason,
        )
    ):
        step = _step_at(specs[vid], cursor)
        name = {
            EnrollmentStatus.REQUALIFIED: "handed_off",
            EnrollmentStatus.COMPLETED: "completed",
        }.get(status, "exited")
        figures[step][name] += count
        exits[(step, str(status), reason or "")] += count
    return exits
