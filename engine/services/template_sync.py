"""``nurture sequences sync`` / ``nurture init`` for templates: the folder into versions.

The templates folder is how templates are imported (git keeps their record); what runs is
what is stored. A file whose current version was published in the web editor is not
replaced unless forced: the editor's text would be lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from engine.exceptions import InvalidInputError
from engine.mail.catalog import TEMPLATE_SUFFIX, FileTemplateCatalog, UnreadableError
from engine.services.template_versions import (
    LABEL_PREFIX,
    ORIGIN_EDITOR,
    ORIGIN_SYNC,
    TemplateProblem,
    apply_plan,
    check_path,
    check_source,
    current_sources,
    current_templates,
    plan_changes,
    problems_of,
)
from engine.store import UnitOfWork


@dataclass
class TemplateSyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    problems: list[TemplateProblem] = field(default_factory=list)


def template_files(root: Path) -> list[str]:
    """Every ``.mjml`` file under ``root``, as paths relative to it (sorted)."""
    if not root.is_dir():
        return []
    return sorted(
        str(file.relative_to(root).as_posix())
        for file in root.rglob(f"*{TEMPLATE_SUFFIX}")
        if file.is_file() or file.is_symlink()
    )


def sync_templates(
    uow: UnitOfWork, root: Path, now: datetime, *, force: bool = False
) -> TemplateSyncReport:
    """Store the templates folder's files as new versions where they changed.

    Files that cannot be read, leave the folder through a symbolic link or do not compile
    are reported and skipped, with what depends on them. A template whose current version
    was published in the editor is not replaced unless ``force``: the editor's text would
    be lost (:func:`export_templates` writes it to the folder first).
    """
    report = TemplateSyncReport()
    files = FileTemplateCatalog(root)
    texts: dict[str, str] = {}
    for path in template_files(root):
        try:
            texts[path] = check_source(f"{LABEL_PREFIX}{path}", files.read(check_path(path)))
        except (InvalidInputError, UnreadableError) as exc:
            detail = _unreadable(exc)
            report.problems.append(TemplateProblem(f"{LABEL_PREFIX}{path}", None, detail))
    with uow:
        session = uow.session
        current = current_templates(session)
        changes: dict[str, str] = {}
        for path, text in texts.items():
            known = current.get(path)
            old = known.version if known else None
            if old is not None and old.source == text:
                continue
            if old is not None and old.origin == ORIGIN_EDITOR and not force:
                report.conflicts.append(path)
                report.problems.append(
                    TemplateProblem(
                        f"{LABEL_PREFIX}{path}",
                        None,
                        f"not synced: version {old.version} was published in the editor"
                        f"{' by ' + old.created_by if old.created_by else ''}; export the "
                        "stored templates to the folder first (or copy that version into the "
                        "file), or sync with --force to replace it",
                    )
                )
                continue
            changes[path] = text
        plan = plan_changes(current, changes, strict=False)
        for _, errors in sorted(plan.refused.items()):
            report.problems += problems_of(errors)
        had = {p for p, c in current.items() if c.version is not None}
        stored = apply_plan(session, current, plan, changes, now, None, ORIGIN_SYNC)
        uow.commit()
    for path in stored:
        (report.updated if path in had else report.created).append(path)
    report.unchanged = sorted(p for p in texts if p not in stored and p not in changes)
    return report


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnreadableError):
        if exc.kind == "outside":
            return (
                "leads outside the templates folder (through a symbolic link): copy the file "
                "into the templates folder instead"
            )
        return f"cannot be read: {exc.detail or exc.kind}"
    return str(exc).split(": ", 1)[-1]


def export_templates(uow: UnitOfWork, root: Path) -> list[str]:
    """Write every template's current version to ``root`` (``<path>``, byte-identical to
    what was published), so git keeps the record of what the editor published; returns the
    paths written. Files are replaced atomically; paths were checked when they were saved,
    and are checked again so nothing is written outside ``root``."""
    with uow:
        sources = current_sources(uow.session)
    written = []
    base = root.resolve()
    for path, text in sorted(sources.items()):
        target = (root / check_path(path)).resolve()
        if not target.is_relative_to(base):
            raise InvalidInputError(f"{path}: would be written outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_bytes(text.encode("utf-8"))
        temporary.replace(target)
        written.append(path)
    return written
