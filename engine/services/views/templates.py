"""The template pages' read side: the list, one template's history, a diff, a draft's checks.

Plain frozen dataclasses for the views (no ORM objects leave here). "Used by" answers the
question a marketer asks before editing: which running sequences send this email (or, for
a partial, which emails include it), so an edit's reach is visible before it is saved.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exceptions import InvalidInputError, NotFoundError
from engine.services.loading import spec_of
from engine.services.template_versions import (
    LABEL_PREFIX,
    TemplateProblem,
    check_path,
    check_source,
    current_templates,
    is_partial,
    plan_changes,
    problems_of,
    template_key,
)
from engine.spec.sequence import EmailStep
from engine.store import (
    EmailTemplate,
    EmailTemplateVersion,
    Sequence,
    SequenceVersion,
    UnitOfWork,
)

__all__ = [
    "DiffLine",
    "SequenceUse",
    "TemplateDetail",
    "TemplateRow",
    "VersionRow",
    "check_draft",
    "template_detail",
    "template_diff",
    "template_rows",
]

MAX_DIFF_LINES = 5_000


@dataclass(frozen=True)
class SequenceUse:
    """A step of a sequence's current version that sends a template."""

    sequence_key: str
    sequence_name: str
    step_id: str
    status: str  # active, paused or archived


@dataclass(frozen=True)
class TemplateRow:
    path: str
    key: str | None  # what a sequence step names; None for a partial
    partial: bool
    version: int | None
    versions: int
    updated_at: datetime
    updated_by: str | None
    origin: str | None
    used_by: list[SequenceUse]  # emails: the sequence steps that send it
    included_by: list[str]  # partials: the emails whose current version includes it


@dataclass(frozen=True)
class VersionRow:
    version: int
    created_at: datetime
    created_by: str | None
    origin: str
    note: str | None
    checksum: str
    current: bool


@dataclass(frozen=True)
class TemplateDetail:
    row: TemplateRow
    versions: list[VersionRow]  # newest first
    includes: list[str]  # partials the shown version was compiled with (emails)
    shown: int | None  # the version whose source is shown
    source: str


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "added", "removed", "hunk"
    text: str
    old: int | None  # line number in the older version
    new: int | None  # line number in the newer version


def _sequence_uses(session: Session) -> dict[str, list[SequenceUse]]:
    """Template key -> the steps of every sequence's current version that send it."""
    uses: dict[str, list[SequenceUse]] = defaultdict(list)
    rows = session.execute(
        select(Sequence.key, Sequence.name, Sequence.status, SequenceVersion)
        .join(SequenceVersion, SequenceVersion.id == Sequence.current_version_id)
        .order_by(Sequence.key)
    ).all()
    for key, name, status, version in rows:
        for index, step in enumerate(spec_of(version).steps, start=1):
            if isinstance(step, EmailStep):
                step_id = step.id or f"step {index}"
                uses[step.email].append(SequenceUse(key, name, step_id, str(status)))
    return uses


def _rows(session: Session) -> dict[str, TemplateRow]:
    current = current_templates(session)
    counts: dict[int, int] = defaultdict(int)
    for template_id in session.scalars(select(EmailTemplateVersion.template_id)):
        counts[template_id] += 1
    uses = _sequence_uses(session)
    included_by: dict[str, list[str]] = defaultdict(list)
    for path, known in current.items():
        if known.version is not None and not is_partial(path):
            for partial in known.version.includes or {}:
                included_by[partial].append(path)
    rows = {}
    for path, known in current.items():
        version, partial = known.version, is_partial(path)
        rows[path] = TemplateRow(
            path=path,
            key=None if partial else template_key(path),
            partial=partial,
            version=version.version if version else None,
            versions=counts[known.template.id],
            updated_at=version.created_at if version else known.template.updated_at,
            updated_by=version.created_by if version else None,
            origin=version.origin if version else None,
            used_by=[] if partial else uses.get(template_key(path), []),
            included_by=sorted(included_by.get(path, [])),
        )
    return rows


def template_rows(uow: UnitOfWork) -> list[TemplateRow]:
    """Every email template, then every partial, by path."""
    with uow:
        rows = _rows(uow.session)
    return sorted(rows.values(), key=lambda row: (row.partial, row.path))


def template_detail(uow: UnitOfWork, path: str, version: int | None = None) -> TemplateDetail:
    """One template with its history (newest first) and the source of ``version`` (the
    current one by default). Raises :class:`NotFoundError` for an unknown path or version."""
    with uow:
        session = uow.session
        row = _rows(session).get(path)
        if row is None:
            raise NotFoundError(f"no template {path!r}")
        template_id = session.scalar(select(EmailTemplate.id).where(EmailTemplate.path == path))
        stored = session.scalars(
            select(EmailTemplateVersion)
            .where(EmailTemplateVersion.template_id == template_id)
            .order_by(EmailTemplateVersion.version.desc())
        ).all()
        wanted = version if version is not None else row.version
        shown = next((v for v in stored if v.version == wanted), None)
        if version is not None and shown is None:
            raise NotFoundError(f"template {path!r} has no version {version}")
        versions = [
            VersionRow(
                v.version,
                v.created_at,
                v.created_by,
                v.origin,
                v.note,
                v.checksum,
                v.version == row.version,
            )
            for v in stored
        ]
        return TemplateDetail(
            row=row,
            versions=versions,
            includes=sorted(shown.includes or {}) if shown else [],
            shown=shown.version if shown else None,
            source=shown.source if shown else "",
        )


def template_diff(uow: UnitOfWork, path: str, old: int, new: int) -> list[DiffLine]:
    """The line diff from version ``old`` to ``new`` (three lines of context per hunk).
    Raises :class:`NotFoundError` for an unknown path or version."""
    with uow:
        session = uow.session
        texts = dict(
            session.execute(
                select(EmailTemplateVersion.version, EmailTemplateVersion.source)
                .join(EmailTemplate, EmailTemplate.id == EmailTemplateVersion.template_id)
                .where(EmailTemplate.path == path, EmailTemplateVersion.version.in_([old, new]))
            ).all()
        )
    for number in (old, new):
        if number not in texts:
            raise NotFoundError(f"template {path!r} has no version {number}")
    return diff_lines(texts[old], texts[new])


def diff_lines(old: str, new: str) -> list[DiffLine]:
    """A unified diff as rows with both line numbers, for a side-numbered table."""
    a, b = old.splitlines(), new.splitlines()
    out: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
        first, last = group[0], group[-1]
        out.append(
            DiffLine(
                "hunk",
                f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@",
                None,
                None,
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [DiffLine("same", a[i], i + 1, j1 + i - i1 + 1) for i in range(i1, i2)]
                continue
            out += [DiffLine("removed", a[i], i + 1, None) for i in range(i1, i2)]
            out += [DiffLine("added", b[j], None, j + 1) for j in range(j1, j2)]
        if len(out) > MAX_DIFF_LINES:
            out.append(DiffLine("hunk", "… the rest of the diff is too long to show", None, None))
            break
    return out


def check_draft(uow: UnitOfWork, path: str, source: str) -> list[TemplateProblem]:
    """What saving ``source`` at ``path`` would refuse, checked as the save checks it (a
    partial: with every email that includes it); saves nothing. Bad input (a path that
    cannot be a template, a control character) comes back as a problem too."""
    try:
        check_source(LABEL_PREFIX + check_path(path), source)
    except InvalidInputError as exc:
        return problems_of([str(exc)])
    with uow:
        plan = plan_changes(current_templates(uow.session), {path: source}, strict=True)
    return [p for errors in plan.refused.values() for p in problems_of(errors)]
