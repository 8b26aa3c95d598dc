"""The sequence editor's writes: check a draft, show what publishing it would do, publish.

A published version is immutable and prospects in flight stay on the version they
started, so publishing never changes what they receive; what it changes is what new
prospects get. The editor shows exactly that before the marketer confirms (``impact``),
refuses a stale edit (someone else published since the editor was opened) instead of
overwriting it, and checks drafts with the one validator ``nurture sequences validate``
and the API use (``engine.spec.loader.check_sequence``), so the errors read the same.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.exceptions import ConflictError, NotFoundError
from engine.services.audit import record_audit
from engine.services.loading import spec_by_checksum
from engine.services.sequences import store_version
from engine.services.template_versions import stored_catalog
from engine.spec.errors import SpecProblem
from engine.spec.loader import check_sequence
from engine.spec.sequence import SequenceSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Sequence,
    SequenceStatus,
    SequenceVersion,
    UnitOfWork,
    VersionOrigin,
)

__all__ = [
    "Draft",
    "Impact",
    "Published",
    "StaleSequenceError",
    "check_base",
    "check_draft",
    "impact",
    "publish",
    "unified_diff",
]

log = logging.getLogger(__name__)

_KEY_LINE = re.compile(r"^key\s*:", re.MULTILINE)


class StaleSequenceError(ConflictError):
    """Someone published another version since the editor loaded the one it changed."""

    def __init__(self, key: str, base: int, current: int, by: str | None, at: datetime) -> None:
        self.key, self.base, self.current = key, base, current
        who = f" by {by}" if by else ""
        super().__init__(
            f"'{key}' changed while you were editing: version {current} was published{who} "
            f"at {at:%Y-%m-%d %H:%M} UTC, after the version {base} you started from. Nothing "
            "was overwritten; your text is kept below. Open the new version, apply your "
            "change to it, and publish again."
        )


@dataclass(frozen=True)
class Draft:
    """A draft's verdict: the spec when it is valid, its problems and warnings by line."""

    spec: SequenceSpec | None
    problems: list[SpecProblem]
    warnings: list[SpecProblem]

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.problems


def check_draft(uow: UnitOfWork, source: str, key: str | None) -> Draft:
    """Validate ``source`` as the sequence ``key`` (None: a new sequence) against the stored
    templates: the validator of ``nurture sequences validate`` and the API, plus the
    editor's own rule that the key stays the sequence's (a new key must be free)."""
    label = f"{key or 'new-sequence'}.yaml"
    checked = check_sequence(source, label, stored_catalog(uow))
    problems = list(checked.problems)
    spec = checked.spec
    if spec is not None and spec.key != key:
        line = _line_of_key(source)
        if key is not None:
            problems.append(
                SpecProblem(
                    label,
                    line,
                    f"the key is {spec.key!r}, but this is the sequence {key!r}: a key never "
                    "changes (running prospects and reports follow it); to start another "
                    "sequence, use New sequence",
                )
            )
        elif _exists(uow, spec.key):
            problems.append(
                SpecProblem(
                    label,
                    line,
                    f"a sequence with the key {spec.key!r} exists already: choose another key",
                )
            )
    return Draft(spec if not problems else None, problems, list(checked.warnings))


def _line_of_key(source: str) -> int | None:
    match = _KEY_LINE.search(source)
    return source.count("\n", 0, match.start()) + 1 if match else None


def _exists(uow: UnitOfWork, key: str) -> bool:
    with uow:
        return uow.session.scalar(select(Sequence.id).where(Sequence.key == key)) is not None


@dataclass(frozen=True)
class InFlight:
    version: int
    step: str
    count: int
    removed: bool  # the step is not in the new version


@dataclass(frozen=True)
class Impact:
    """What publishing a draft does, shown before the marketer confirms."""

    key: str
    new: bool  # a new sequence
    base: int | None  # the version the draft started from
    next_version: int
    diff: list[str]  # unified diff lines against the running version
    in_flight: list[InFlight]
    removed_steps: list[str]
    added_steps: list[str]
    changed_steps: list[str]
    status: str

    @property
    def total(self) -> int:
        return sum(row.count for row in self.in_flight)


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> list[str]:
    """Line diff of two sources, three lines of context (what a reviewer reads in git)."""
    return list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), old_label, new_label, n=3, lineterm=""
        )
    )


def impact(uow: UnitOfWork, key: str | None, spec: SequenceSpec, source: str) -> Impact:
    """The diff against the running version, and who is in flight at which step."""
    with uow:
        s = uow.session
        row = s.execute(
            select(Sequence, SequenceVersion)
            .join(SequenceVersion, SequenceVersion.id == Sequence.current_version_id)
            .where(Sequence.key == (key or spec.key))
        ).first()
        if row is None:
            steps = spec.step_ids()
            return Impact(spec.key, True, None, 1, [], [], [], steps, [], "paused")
        sequence, current = row
        versions = {
            vid: (number, checksum)
            for vid, number, checksum in s.execute(
                select(SequenceVersion.id, SequenceVersion.version, SequenceVersion.checksum)
                .where(SequenceVersion.sequence_id == sequence.id)
                .order_by(SequenceVersion.version)
            )
        }
        flights = _in_flight(s, sequence.id, versions, set(spec.step_ids()))
        old_spec = spec_by_checksum(s, current.id, current.checksum)
        old_steps = dict(zip(old_spec.step_ids(), old_spec.steps, strict=True))
        new_by_id = dict(zip(spec.step_ids(), spec.steps, strict=True))
        return Impact(
            key=sequence.key,
            new=False,
            base=current.version,
            next_version=max(n for n, _ in versions.values()) + 1,
            diff=unified_diff(current.source, source, f"version {current.version}", "your draft"),
            in_flight=flights,
            removed_steps=[sid for sid in old_steps if sid not in new_by_id],
            added_steps=[sid for sid in new_by_id if sid not in old_steps],
            changed_steps=[
                sid
                for sid, step in new_by_id.items()
                if sid in old_steps and old_steps[sid] != step
            ],
            status=str(sequence.status),
        )


def _in_flight(
    s: Session, sequence_id: int, versions: dict[int, tuple[int, str]], new_steps: set[str]
) -> list[InFlight]:
    """Active enrollments per version and step, each marked when the draft no longer has
    that step (the marketer is shown who stands on what goes): one grouped statement."""
    flights = []
    for vid, cursor, count in s.execute(
        select(Enrollment.sequence_version_id, Enrollment.cursor, func.count())
        .where(
            Enrollment.sequence_id == sequence_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(Enrollment.sequence_version_id, Enrollment.cursor)
        .order_by(Enrollment.sequence_version_id, Enrollment.cursor)
    ):
        number, checksum = versions[vid]
        ids = spec_by_checksum(s, vid, checksum).step_ids()
        step = ids[cursor] if cursor < len(ids) else "(the end)"
        flights.append(InFlight(number, step, count, step not in new_steps))
    return flights


def check_base(uow: UnitOfWork, key: str, base: int | None) -> None:
    """Raise :class:`StaleSequenceError` when ``base`` is no longer ``key``'s running
    version (the impact page says so before the marketer confirms anything)."""
    with uow:
        current = uow.session.execute(
            select(SequenceVersion)
            .join(Sequence, Sequence.current_version_id == SequenceVersion.id)
            .where(Sequence.key == key)
        ).scalar_one_or_none()
        if current is not None and base != current.version:
            raise StaleSequenceError(
                key, base or 0, current.version, current.created_by, current.created_at
            )


@dataclass(frozen=True)
class Published:
    key: str
    version: int
    created: bool  # False: the text equals the running version
    new_sequence: bool


def publish(
    uow: UnitOfWork,
    key: str | None,
    source: str,
    base: int | None,
    now: datetime,
    *,
    actor: str,
    reverted_from: int | None = None,
) -> Published:
    """Store ``source`` as the next version of ``key`` (None: create a new sequence, which
    starts paused so it can be checked and rehearsed before anyone enters).

    Refuses, changing nothing: an invalid draft (:class:`DraftError`), an edit whose
    ``base`` is no longer the running version (:class:`StaleSequenceError`), an archived
    sequence, an unknown one. The audit entry commits with the version.
    """
    draft = check_draft(uow, source, key)
    if not draft.ok or draft.spec is None:
        raise DraftError(draft.problems)
    spec = draft.spec
    with uow:
        s = uow.session
        if key is not None:
            _check_editable(s, key, base)
        version, created = _store(uow, spec, source, now, actor)
        if key is None:
            created_sequence = s.scalars(select(Sequence).where(Sequence.key == spec.key)).one()
            created_sequence.status = SequenceStatus.PAUSED
        if created:
            action, summary = _audit_words(spec, version.version, key is None, reverted_from)
            record_audit(
                s,
                actor=actor,
                action=action,
                subject=f"sequence:{spec.key}",
                summary=summary,
                now=now,
                details={"version": version.version, "reverted_from": reverted_from},
            )
            uow.commit()
        number = version.version
    log.info("sequence %s v%s published by %s", spec.key, number, actor)
    return Published(spec.key, number, created, key is None)


def _store(
    uow: UnitOfWork, spec: SequenceSpec, source: str, now: datetime, actor: str
) -> tuple[SequenceVersion, bool]:
    """The new version (and whether it is new: the same source again is not)."""
    try:
        return store_version(uow.session, spec, source, now, actor, VersionOrigin.EDITOR)
    except IntegrityError:  # the same key created, or the same version number taken,
        uow.rollback()  # by someone else a moment ago: theirs stands, nothing is written
        raise ConflictError(
            f"'{spec.key}' was changed by someone else a moment ago: reload it and "
            "apply your change again"
        ) from None


def _check_editable(s: Session, key: str, base: int | None) -> None:
    """Lock sequence ``key`` and refuse an edit it cannot take: an unknown or archived
    sequence, or a draft based on a version that is no longer the running one (someone
    published meanwhile: saving would silently undo their change)."""
    sequence = s.scalars(select(Sequence).where(Sequence.key == key).with_for_update()).first()
    if sequence is None:
        raise NotFoundError(f"no sequence {key!r}")
    if sequence.status == SequenceStatus.ARCHIVED:
        raise ConflictError(f"'{sequence.name}' is archived: restore it to edit it")
    current = s.get(SequenceVersion, sequence.current_version_id)
    if current is not None and base != current.version:
        raise StaleSequenceError(
            key, base or 0, current.version, current.created_by, current.created_at
        )


def _audit_words(
    spec: SequenceSpec, version: int, new: bool, reverted_from: int | None
) -> tuple[str, str]:
    if new:
        return "sequence.created", f"Created sequence '{spec.name}' (version 1, paused)"
    if reverted_from is not None:
        return (
            "sequence.reverted",
            f"Reverted '{spec.name}' to the text of version {reverted_from}, as version {version}",
        )
    return "sequence.published", f"Published version {version} of '{spec.name}'"


class DraftError(ConflictError):
    """The draft does not validate; ``problems`` lists every reason at its line."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "the draft is not valid")
