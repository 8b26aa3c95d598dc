"""Email templates as versioned data, for the web editor: list, read, save a version.

Templates live in the database as immutable versions, like sequences, so every web and
worker host renders the same text without a shared disk, and a message names the version
it was rendered from. The folder is synced in by :mod:`engine.services.template_sync`; the
editor saves through :func:`save_template`, which refuses a stale edit (someone else
published meanwhile) and any problem, at its file and line, saving nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.exceptions import ConflictError, NotFoundError
from engine.services.audit import SYSTEM_ACTOR, record_audit
from engine.services.template_versions import (
    LABEL_PREFIX,
    ORIGIN_EDITOR,
    TemplateValidationError,
    apply_plan,
    check_path,
    check_source,
    current_templates,
    is_partial,
    plan_changes,
    problems_of,
    template_key,
)
from engine.store import EmailTemplate, EmailTemplateVersion, UnitOfWork


class StaleTemplateError(ConflictError):
    """Someone published another version since the editor loaded the one it changed."""

    def __init__(self, path: str, current: int, by: str | None, at: datetime) -> None:
        self.path, self.current_version, self.published_by, self.published_at = (
            path,
            current,
            by,
            at,
        )
        who = f" by {by}" if by else ""
        super().__init__(
            f"{path}: someone else published version {current}{who} at {at:%Y-%m-%d %H:%M} "
            "UTC meanwhile; reload it and apply your change again"
        )


@dataclass(frozen=True)
class TemplateSummary:
    path: str
    key: str | None  # what a sequence step names; None for a partial
    partial: bool
    version: int | None
    versions: int
    updated_at: datetime
    updated_by: str | None
    includes: list[str]  # partials the current version includes (emails only)


@dataclass(frozen=True)
class TemplateVersionInfo:
    path: str
    version: int
    current: bool
    source: str
    checksum: str
    render_checksum: str | None
    includes: dict[str, str]
    created_at: datetime
    created_by: str | None
    origin: str
    note: str | None


def list_templates(uow: UnitOfWork) -> list[TemplateSummary]:
    """Every template and partial with its current version, emails first, by path."""
    with uow:
        session = uow.session
        counts = dict(
            session.execute(
                select(EmailTemplateVersion.template_id, func.count()).group_by(
                    EmailTemplateVersion.template_id
                )
            ).all()
        )
        rows = []
        for path, known in current_templates(session).items():
            version = known.version
            rows.append(
                TemplateSummary(
                    path=path,
                    key=None if is_partial(path) else template_key(path),
                    partial=is_partial(path),
                    version=version.version if version else None,
                    versions=counts.get(known.template.id, 0),
                    updated_at=version.created_at if version else known.template.updated_at,
                    updated_by=version.created_by if version else None,
                    includes=sorted((version.includes or {}) if version else {}),
                )
            )
        return sorted(rows, key=lambda row: (row.partial, row.path))


def get_template_version(
    uow: UnitOfWork, path: str, version: int | None = None
) -> TemplateVersionInfo:
    """A version's source and what it was compiled with (the current one by default).
    Raises :class:`NotFoundError` for an unknown path or version."""
    with uow:
        session = uow.session
        template = session.scalars(select(EmailTemplate).where(EmailTemplate.path == path)).first()
        if template is None:
            raise NotFoundError(f"no template {path!r}")
        stmt = select(EmailTemplateVersion).where(EmailTemplateVersion.template_id == template.id)
        if version is None:
            stmt = stmt.where(EmailTemplateVersion.id == template.current_version_id)
        else:
            stmt = stmt.where(EmailTemplateVersion.version == version)
        row = session.scalars(stmt).first()
        if row is None:
            raise NotFoundError(f"template {path!r} has no version {version}")
        return _info(path, row, row.id == template.current_version_id)


def _info(path: str, row: EmailTemplateVersion, current: bool) -> TemplateVersionInfo:
    return TemplateVersionInfo(
        path=path,
        version=row.version,
        current=current,
        source=row.source,
        checksum=row.checksum,
        render_checksum=row.render_checksum,
        includes=dict(row.includes or {}),
        created_at=row.created_at,
        created_by=row.created_by,
        origin=row.origin,
        note=row.note,
    )


@dataclass(frozen=True)
class SaveResult:
    version: TemplateVersionInfo
    created: bool  # False when the source was unchanged
    republished: list[str]  # emails that got a new version because this partial changed


def save_template(
    uow: UnitOfWork,
    path: str,
    source: str,
    base_version: int | None,
    now: datetime,
    author: str | None = None,
) -> SaveResult:
    """Publish ``source`` as the next version of the template at ``path``.

    ``base_version`` is the version the editor loaded (None for a new template): if
    another one was published since, :class:`StaleTemplateError` says by whom, and
    nothing is saved. The text is checked like ``nurture sequences validate`` checks it
    (for a partial: every email that includes it, with it); any problem raises
    :class:`TemplateValidationError` with its file and line, and nothing is saved.
    """
    check_source(LABEL_PREFIX + check_path(path), source)
    try:
        with uow:
            session = uow.session
            current = current_templates(session)
            known = current.get(path)
            if known is not None and uow.is_postgres:  # one publisher at a time per template
                session.execute(
                    select(EmailTemplate.id)
                    .where(EmailTemplate.id == known.template.id)
                    .with_for_update()
                )
                current = current_templates(session)
                known = current.get(path)
            old = known.version if known else None
            if (old.version if old else None) != base_version:
                if old is None:
                    raise NotFoundError(f"no template {path!r} to update: save it as new")
                raise StaleTemplateError(path, old.version, old.created_by, old.created_at)
            if old is not None and old.source == source:
                return SaveResult(_info(path, old, True), False, [])
            plan = plan_changes(current, {path: source}, strict=True)
            if plan.refused:
                raise TemplateValidationError(
                    [p for errors in plan.refused.values() for p in problems_of(errors)]
                )
            stored = apply_plan(session, current, plan, {path: source}, now, author, ORIGIN_EDITOR)
            version = current[path].version
            assert version is not None
            _audit(session, path, version.version, stored, author, now)
            uow.commit()
            return SaveResult(_info(path, version, True), True, [p for p in stored if p != path])
    except IntegrityError:  # two saves of the same base raced; the other one won
        return _raced(uow, path)


def _audit(
    session: Session,
    path: str,
    number: int,
    stored: list[str],
    author: str | None,
    now: datetime,
) -> None:
    """The audit entry of a save, in its transaction: who published which version, and the
    emails a partial's save republished."""
    also = [p for p in stored if p != path]
    summary = f"Published {path} version {number}"
    if also:
        summary += f"; republished {', '.join(also)} with it"
    record_audit(
        session,
        actor=author or SYSTEM_ACTOR,
        action="template.published",
        subject=f"template:{path}",
        summary=summary,
        now=now,
        details={"version": number, "republished": also},
    )


def _raced(uow: UnitOfWork, path: str) -> NoReturn:
    info = get_template_version(uow, path)
    raise StaleTemplateError(path, info.version, info.created_by, info.created_at)
