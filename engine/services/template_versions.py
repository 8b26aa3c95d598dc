"""Template versions in the database: reading the current set, checking a change, storing it.

The shared machinery of :mod:`engine.services.templates` (the editor's services) and
:mod:`engine.services.template_sync` (the templates folder), and the lookups the send path
makes: which version a new email names, and the text of a version to render.

An email template's version keeps the exact partials it was compiled with. Publishing a
partial therefore publishes a new version of every email that includes it, each checked
first: a footer edit that would break one email is refused, with that email's problem at
its line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.exceptions import InvalidInputError
from engine.mail.catalog import TEMPLATE_SUFFIX, SourcesCatalog, TemplateError, valid_key
from engine.mail.render import StoredTemplate, content_checksum
from engine.store import EmailTemplate, EmailTemplateVersion, UnitOfWork, end_read

MAX_TEMPLATE_CHARS = 200_000
"""Largest template or partial accepted: a long email's MJML is ~10 KB."""
LABEL_PREFIX = "templates/"
ORIGIN_SYNC, ORIGIN_EDITOR = "sync", "editor"
_PROBLEM = re.compile(r"^(?P<file>templates/[^\s:]+)(?::(?P<line>\d+))?: (?P<message>.*)$", re.S)
_SESSION_CACHE = "nurture_template_versions"
_PARTIAL = re.compile(r"(?:[a-z0-9_][a-z0-9_-]*/)+[a-z0-9_][a-z0-9_-]*\.mjml")


@dataclass(frozen=True)
class TemplateProblem:
    """One problem of a template: the file it is in (``templates/<path>``), the 1-based
    line when there is one, and what is wrong with the fix."""

    file: str | None
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}" if where else self.message


class TemplateValidationError(InvalidInputError):
    """A template (or an email that includes the partial) would not compile; nothing was
    saved. ``template_problems`` has each one at its file and line; ``problems`` says the
    same as ``(file:line, message)`` pairs, as every input error does."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__(
            "; ".join(str(problem) for problem in problems),
            problems=[
                (f"{p.file}:{p.line}" if p.file and p.line else p.file, p.message) for p in problems
            ],
        )
        self.template_problems = problems


def problems_of(errors: list[str]) -> list[TemplateProblem]:
    """The catalog's ``templates/<path>:<line>: message`` strings, taken apart."""
    out = []
    for error in errors:
        match = _PROBLEM.match(error)
        if match is None:
            out.append(TemplateProblem(None, None, error))
        else:
            line = match["line"]
            out.append(
                TemplateProblem(match["file"], int(line) if line else None, match["message"])
            )
    return out


def is_partial(path: str) -> bool:
    """Partials live in folders whose name starts with ``_`` (``_partials/footer.mjml``)."""
    return any(part.startswith("_") for part in PurePosixPath(path).parts[:-1])


def template_key(path: str) -> str:
    """``price/value-recap.mjml`` -> ``price/value-recap``, the key sequences use."""
    return path.removesuffix(TEMPLATE_SUFFIX)


def check_path(path: str) -> str:
    """``path`` if it may name a template file, else :class:`InvalidInputError`."""
    ok = valid_key(template_key(path)) if not is_partial(path) else _PARTIAL.fullmatch(path)
    if not path.endswith(TEMPLATE_SUFFIX) or not ok or len(path) > 300:
        raise InvalidInputError(
            f"{path!r} is not a template path: write it like 'price/value-recap.mjml' or "
            "'_partials/footer.mjml' (lower-case letters, digits, '-', '_' and '/', ending "
            "in .mjml)"
        )
    return path


def check_source(path: str, source: str) -> str:
    """``source`` if it can be stored as a template's text, else :class:`InvalidInputError`."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise InvalidInputError(
            f"{path}: {len(source):,} characters is more than the {MAX_TEMPLATE_CHARS:,} a "
            "template may have"
        )
    bad = next(
        (ch for ch in source if (ch < " " and ch not in "\t\n\r") or 0xD800 <= ord(ch) <= 0xDFFF),
        None,
    )
    if bad is not None:
        line = source[: source.index(bad)].count("\n") + 1
        raise InvalidInputError(
            f"{path}:{line}: the control character {bad!r} cannot be part of a template; remove it"
        )
    return source


def checksum_of(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


# --- reading the current set ------------------------------------------------------------


@dataclass
class CurrentTemplate:
    template: EmailTemplate
    version: EmailTemplateVersion | None


def current_templates(session: Session) -> dict[str, CurrentTemplate]:
    """Every template with its current version, by path (a small table: one query)."""
    rows = session.execute(
        select(EmailTemplate, EmailTemplateVersion).outerjoin(
            EmailTemplateVersion, EmailTemplateVersion.id == EmailTemplate.current_version_id
        )
    ).all()
    return {template.path: CurrentTemplate(template, version) for template, version in rows}


def sources_of(current: Mapping[str, CurrentTemplate]) -> dict[str, str]:
    return {path: c.version.source for path, c in current.items() if c.version is not None}


def current_sources(session: Session) -> dict[str, str]:
    """Path -> text of every template's current version."""
    return sources_of(current_templates(session))


def stored_catalog(uow: UnitOfWork) -> SourcesCatalog:
    """The current stored templates as a catalog: what sequences are validated against
    when they are saved from the editor or the API, so they check what will be sent."""
    with uow:
        catalog = SourcesCatalog(sources_of(current_templates(uow.session)), LABEL_PREFIX)
        end_read(uow)  # every sync and every save: see engine.store.uow.end_read
        return catalog


def current_version_ids(session: Session) -> dict[str, int]:
    """Template key -> current version id of every email template, read once per
    transaction (the tick names the version of each email it queues)."""
    cached = session.info.get(_SESSION_CACHE)
    if cached is None:
        rows = session.execute(
            select(EmailTemplate.path, EmailTemplate.current_version_id).where(
                EmailTemplate.current_version_id.is_not(None)
            )
        )
        cached = {
            template_key(path): version_id
            for path, version_id in rows
            if not is_partial(path) and version_id is not None
        }
        session.info[_SESSION_CACHE] = cached
    return cached  # type: ignore[no-any-return]


def not_stored(key: str) -> TemplateError:
    """The error of an email whose template was never stored, with the fix."""
    return TemplateError(
        [
            f"template {key!r} is not stored in the database: run `nurture sequences sync` "
            "(or save it in the editor)"
        ]
    )


def message_template(session: Session, version_id: int | None, key: str) -> StoredTemplate:
    """The version a message names (else, for a row older than stored templates, the
    template's current one), its text read now: for showing one email, where the session
    may be gone by the time it renders. Raises :class:`TemplateError` if not stored."""
    number = version_id or current_version_ids(session).get(key)
    row = session.get(EmailTemplateVersion, number) if number is not None else None
    if row is None or row.render_checksum is None:
        raise not_stored(key)
    sources = {key: row.source, **(row.includes or {})}
    return StoredTemplate(key, row.render_checksum, lambda: sources)


def stored_template(session: Session, version_id: int, checksum: str, key: str) -> StoredTemplate:
    """What the renderer needs for version ``version_id``; its text is read only if this
    process has not compiled it yet."""

    def load() -> dict[str, str]:
        version = session.get(EmailTemplateVersion, version_id)
        if version is None:
            raise TemplateError([f"template {key!r}: version {version_id} does not exist"])
        return {key: version.source, **(version.includes or {})}

    return StoredTemplate(key, checksum, load)


# --- planning a change ------------------------------------------------------------------


@dataclass
class Plan:
    """What publishing ``changes`` would store, and what it cannot."""

    partials: dict[str, str] = field(default_factory=dict)  # path -> new text
    emails: dict[str, tuple[str, dict[str, str], str]] = field(default_factory=dict)
    refused: dict[str, list[str]] = field(default_factory=dict)  # path -> its errors


def _compile(path: str, sources: Mapping[str, str]) -> tuple[dict[str, str], str] | list[str]:
    """``(includes, render checksum)`` of email ``path`` among ``sources``, or its errors."""
    key = template_key(path)
    try:
        _, used = SourcesCatalog(sources, LABEL_PREFIX).compile_with_sources(key)
    except TemplateError as exc:
        return exc.errors
    return {p: t for p, t in used.items() if p != key}, content_checksum(used, key)


def plan_changes(
    current: Mapping[str, CurrentTemplate], changes: Mapping[str, str], strict: bool
) -> Plan:
    """Check every email the changes touch against the changed set.

    ``strict`` (the editor): any failure refuses everything. Otherwise (a sync) a changed
    partial that is broken, or breaks an email, is left out, and the emails are checked
    again without it, so one bad file holds back only itself and what depends on it.
    """
    base = sources_of(current)
    held: dict[str, list[str]] = {}  # partials left out of a sync, with their errors
    while True:
        accepted = {p: s for p, s in changes.items() if p not in held}
        merged = base | accepted
        checker = SourcesCatalog(merged, LABEL_PREFIX)
        own = {  # a partial's own mistakes, even if no email includes it
            p: errors for p in accepted if is_partial(p) and (errors := checker.check_file(p))
        }
        if own and strict:
            return Plan(refused=own)
        if own:
            held |= own
            continue
        plan = Plan(partials={p: s for p, s in accepted.items() if is_partial(p)})
        for path in sorted(p for p in merged if not is_partial(p)):
            known = current.get(path)
            old = known.version if known else None
            touched = (
                path in accepted or old is None or any(p in accepted for p in (old.includes or {}))
            )
            if not touched:
                continue
            result = _compile(path, merged)
            if isinstance(result, list):
                plan.refused[path] = result
                continue
            includes, checksum = result
            if old is None or old.source != merged[path] or old.render_checksum != checksum:
                plan.emails[path] = (merged[path], includes, checksum)
        if strict:
            return plan
        breaking = {
            p
            for p in plan.partials
            if any(p in _included(q, merged, current) for q in plan.refused)
        }
        if not breaking:
            for partial, errors in held.items():
                plan.refused[partial] = errors or [
                    f"{LABEL_PREFIX}{partial}: not stored: an email that includes it does not "
                    "compile with it (see that email's problems)"
                ]
            return plan
        held |= {partial: [] for partial in breaking}


def _included(
    path: str, merged: Mapping[str, str], current: Mapping[str, CurrentTemplate]
) -> set[str]:
    """The partials email ``path`` includes, as far as can be told when it fails: what
    its current version included, and any partial its text names."""
    known = current.get(path)
    names = set((known.version.includes or {}) if known and known.version else {})
    text = merged.get(path, "")
    names |= {p for p in merged if is_partial(p) and p in text}
    return names


def _store(
    session: Session,
    current: dict[str, CurrentTemplate],
    path: str,
    source: str,
    now: datetime,
    author: str | None,
    origin: str,
    note: str | None = None,
    includes: dict[str, str] | None = None,
    render_checksum: str | None = None,
) -> EmailTemplateVersion:
    known = current.get(path)
    if known is None:
        template = EmailTemplate(path=path, created_at=now, updated_at=now)
        session.add(template)
        session.flush()
        known = current[path] = CurrentTemplate(template, None)
    number = (
        session.scalar(
            select(func.max(EmailTemplateVersion.version)).where(
                EmailTemplateVersion.template_id == known.template.id
            )
        )
        or 0
    ) + 1
    version = EmailTemplateVersion(
        template_id=known.template.id,
        version=number,
        source=source,
        checksum=checksum_of(source),
        includes=includes,
        render_checksum=render_checksum,
        created_at=now,
        created_by=author,
        origin=origin,
        note=note,
    )
    session.add(version)
    session.flush()
    known.template.current_version_id = version.id
    known.template.updated_at = now
    known.version = version
    return version


def apply_plan(
    session: Session,
    current: dict[str, CurrentTemplate],
    plan: Plan,
    changes: Mapping[str, str],
    now: datetime,
    author: str | None,
    origin: str,
) -> list[str]:
    """Store the plan; returns the paths that got a new version."""
    stored = []
    for path, source in sorted(plan.partials.items()):
        _store(session, current, path, source, now, author, origin)
        stored.append(path)
    for path, (source, includes, checksum) in sorted(plan.emails.items()):
        note = None
        if path not in changes:
            partials = sorted(p for p in includes if p in plan.partials)
            note = f"{', '.join(partials)} changed"
        _store(session, current, path, source, now, author, origin, note, includes, checksum)
        stored.append(path)
    return stored
