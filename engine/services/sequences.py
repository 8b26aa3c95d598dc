"""Sequence use cases: sync YAML files into immutable versions, list what is live.

Every saved change is a new version row; running enrollments keep the version they started
on, so editing a live sequence never changes what an in-flight prospect receives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.services.scoring import save_scoring
from engine.spec.errors import SpecError, SpecProblem
from engine.spec.loader import SCORING_FILENAMES, load_specs, parse_sequence
from engine.spec.sequence import SequenceSpec
from engine.spec.validate import TemplateCatalog
from engine.store import Sequence, SequenceVersion, UnitOfWork, VersionOrigin, end_read


@dataclass
class SyncReport:
    scoring: str = "absent"  # "created" | "unchanged" | "invalid" | "absent"
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # keys kept: published in the editor
    problems: list[SpecProblem] = field(default_factory=list)


def save_version(
    uow: UnitOfWork,
    source: str,
    filename: str,
    templates: TemplateCatalog | None,
    now: datetime,
    author: str | None = None,
    origin: VersionOrigin = VersionOrigin.SYNC,
) -> tuple[SequenceVersion, bool]:
    """Validate ``source`` and store it as the sequence's new current version.

    Returns ``(version, created)``; an unchanged source returns the current version and
    ``False``. Raises ``SpecError`` without touching the database when it is invalid.
    """
    spec = parse_sequence(source, filename, templates)
    with uow:
        version, created = store_version(uow.session, spec, source, now, author, origin)
        if created:
            uow.commit()
        else:  # unchanged, nothing written: see engine.store.uow.end_read
            end_read(uow)
        return version, created


def checksum_of(source: str) -> str:
    """What a version's ``checksum`` holds: the SHA-256 of its text, exactly as written."""
    return hashlib.sha256(source.encode()).hexdigest()


def store_version(
    session: Session,
    spec: SequenceSpec,
    source: str,
    now: datetime,
    author: str | None,
    origin: VersionOrigin,
) -> tuple[SequenceVersion, bool]:
    """Add ``source`` (already validated as ``spec``) as the sequence's current version in
    the caller's transaction (no commit); a new sequence is created, active."""
    checksum = checksum_of(source)
    sequence = session.scalars(select(Sequence).where(Sequence.key == spec.key)).first()
    if sequence is None:
        sequence = Sequence(key=spec.key, name=spec.name, created_at=now, updated_at=now)
        session.add(sequence)
        session.flush()
    current = (
        session.get(SequenceVersion, sequence.current_version_id)
        if sequence.current_version_id
        else None
    )
    if current is not None and current.checksum == checksum:
        return current, False
    number = (
        session.scalar(
            select(func.max(SequenceVersion.version)).where(
                SequenceVersion.sequence_id == sequence.id
            )
        )
        or 0
    ) + 1
    version = SequenceVersion(
        sequence_id=sequence.id,
        version=number,
        source=source,
        spec=spec.to_json(),
        checksum=checksum,
        created_at=now,
        created_by=author,
        origin=origin,
    )
    session.add(version)
    session.flush()
    sequence.current_version_id = version.id
    sequence.name = spec.name
    sequence.updated_at = now
    return version, True


def sync_sequences(
    uow_factory: Callable[[], UnitOfWork],
    paths: list[Path],
    templates: TemplateCatalog | None,
    now: datetime,
    *,
    force: bool = False,
) -> SyncReport:
    """Store a new version of each sequence file that changed, and the scoring rules.

    A sequence whose current version was published in the web editor is not replaced by a
    file that differs from it unless ``force``: the editor's text exists nowhere else
    (``export_sequences`` writes it to the folder first); it is reported as a conflict.

    The files are found and checked by ``load_specs``, exactly as ``nurture sequences
    validate`` checks them, so sync stores nothing validate refuses: a file with a
    problem is reported and skipped (one broken draft does not block the others), and two
    files with the same key are both refused (storing either would be a guess, and storing
    both made every later sync flip the sequence between them). Two scoring files are
    refused alike.
    """
    loaded = load_specs(paths, templates)
    report = SyncReport(problems=list(loaded.problems))
    refused = {problem.file for problem in loaded.problems}
    if loaded.scoring_path is not None:
        if any(Path(file).name in SCORING_FILENAMES for file in refused):
            report.scoring = "invalid"
        else:
            report.scoring = _sync_scoring(uow_factory, loaded.scoring_path, now, report)
    for path in loaded.sequences:
        if str(path) in refused:
            continue
        try:
            source = path.read_text(encoding="utf-8")
            key = loaded.sequences[path].key
            conflict = None if force else _editor_conflict(uow_factory(), path, key, source)
            if conflict is not None:
                report.conflicts.append(key)
                report.problems.append(conflict)
                continue
            version, created = save_version(uow_factory(), source, str(path), templates, now)
        except SpecError as exc:  # changed on disk since it was checked
            report.problems += exc.problems
            continue
        except (OSError, UnicodeDecodeError) as exc:
            report.problems.append(SpecProblem(str(path), None, f"cannot read: {exc}"))
            continue
        key = SequenceSpec.model_validate(version.spec).key
        if not created:
            report.unchanged.append(key)
        elif version.version == 1:
            report.created.append(key)
        else:
            report.updated.append(key)
    return report


def _editor_conflict(uow: UnitOfWork, path: Path, key: str, source: str) -> SpecProblem | None:
    """The problem to report when the file would replace a version published in the
    editor (by a different text), else None."""
    with uow:
        row = uow.session.execute(
            select(SequenceVersion)
            .join(Sequence, Sequence.current_version_id == SequenceVersion.id)
            .where(Sequence.key == key)
        ).scalar_one_or_none()
        end_read(uow)  # only read (every sync, every file): see engine.store.uow.end_read
        if row is None or row.origin != VersionOrigin.EDITOR or row.checksum == checksum_of(source):
            return None
        who = f" by {row.created_by}" if row.created_by else ""
        return SpecProblem(
            str(path),
            None,
            f"not synced: the running version {row.version} of {key!r} was published in the web "
            f"editor{who} on {row.created_at:%Y-%m-%d %H:%M} UTC and differs from this file; "
            "run `nurture sequences export DIR` and merge it into the file, or sync with "
            "--force to replace it",
        )


def export_sequences(uow: UnitOfWork, root: Path) -> list[str]:
    """Write every sequence's current version to ``root/<key>.yaml``, byte for byte what
    was published (comments, order, line endings), so git keeps the record of what the
    editor published; returns the file names written, sorted."""
    root.mkdir(parents=True, exist_ok=True)
    with uow:
        rows = uow.session.execute(
            select(Sequence.key, SequenceVersion.source)
            .join(SequenceVersion, SequenceVersion.id == Sequence.current_version_id)
            .order_by(Sequence.key)
        ).all()
    written = []
    for key, source in rows:
        name = f"{key}.yaml"
        (root / name).write_bytes(source.encode("utf-8"))
        written.append(name)
    return written


def _sync_scoring(
    uow_factory: Callable[[], UnitOfWork], path: Path, now: datetime, report: SyncReport
) -> str:
    try:
        changed = save_scoring(uow_factory(), path.read_text(encoding="utf-8"), str(path), now)
    except SpecError as exc:
        report.problems += exc.problems
        return "invalid"
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(SpecProblem(str(path), None, f"cannot read: {exc}"))
        return "invalid"
    return "created" if changed else "unchanged"


@dataclass(frozen=True)
class SequenceSummary:
    id: int
    key: str
    name: str
    active: bool
    version: int | None
    versions: int


def list_sequences(uow: UnitOfWork) -> list[SequenceSummary]:
    with uow:
        session = uow.session
        counts = dict(
            session.execute(
                select(SequenceVersion.sequence_id, func.count()).group_by(
                    SequenceVersion.sequence_id
                )
            ).all()
        )
        out = []
        for seq in session.scalars(select(Sequence).order_by(Sequence.key)):
            current = (
                session.get(SequenceVersion, seq.current_version_id)
                if seq.current_version_id
                else None
            )
            out.append(
                SequenceSummary(
                    seq.id,
                    seq.key,
                    seq.name,
                    seq.active,
                    current.version if current else None,
                    counts.get(seq.id, 0),
                )
            )
        return out
