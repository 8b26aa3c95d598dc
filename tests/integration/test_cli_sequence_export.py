"""``nurture sequences export`` writes what was published byte for byte, and ``sync`` never
silently replaces a version published in the web editor (issue #9 point 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from engine.config import Settings
from engine.runtime import Runtime
from engine.services.sequence_publish import publish
from engine.store import Sequence, SequenceVersion
from webapp.cli import common, main

ROOT = Path(__file__).resolve().parents[2]
PRICE_FILE = ROOT / "sequences" / "lost-on-price.yaml"
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)

Run = Callable[..., Result]


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


@pytest.fixture
def run(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """The CLI in-process on a private SQLite database, the shipped folders synced."""
    monkeypatch.setenv("NURTURE_DATABASE_URL", database)
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(ROOT / "sequences"))
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(ROOT / "templates"))
    common.settings.cache_clear()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    assert invoke("init").exit_code == 0
    yield invoke
    common.settings.cache_clear()


def publish_in_editor(database: str, source: str, base: int) -> None:
    runtime = Runtime.from_settings(Settings(database_url=database, redis_url=None))
    try:
        publish(runtime.uow(), "lost-on-price", source, base, NOW, actor="ana@example.com")
    finally:
        runtime.close()


def edited() -> str:
    """The shipped file with a comment and CRLF-free edit, as the editor would publish."""
    return PRICE_FILE.read_text(encoding="utf-8").replace("wait: 4d", "wait: 5d  # a day more")


def test_export_writes_every_running_version_byte_for_byte(
    run: Run, database: str, tmp_path: Path
) -> None:
    publish_in_editor(database, edited(), 1)
    out = tmp_path / "exported"
    result = run("sequences", "export", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "lost-on-price.yaml",
        "not-ready-timing.yaml",
        "went-dark-after-demo.yaml",
    ]
    assert (out / "lost-on-price.yaml").read_bytes() == edited().encode("utf-8")
    shipped = ROOT / "sequences" / "went-dark-after-demo.yaml"
    assert (out / "went-dark-after-demo.yaml").read_bytes() == shipped.read_bytes()


def test_sync_reports_an_editor_version_as_a_conflict_and_force_replaces_it(
    run: Run, database: str, tmp_path: Path
) -> None:
    publish_in_editor(database, edited(), 1)
    conflict = run("sequences", "sync")
    assert conflict.exit_code == 1
    assert "not synced: the running version 2 of 'lost-on-price' was published in the web " in (
        conflict.output
    )
    assert "ana@example.com" in conflict.output and "--force" in conflict.output
    assert "kept from the editor 1" in conflict.output

    exported = tmp_path / "exported"
    run("sequences", "export", str(exported))
    merged = run("sequences", "sync", str(exported))  # the editor's text itself: no conflict
    assert merged.exit_code == 0, merged.output

    forced = run("sequences", "sync", "--force")
    assert forced.exit_code == 0, forced.output
    assert "updated: lost-on-price" in forced.output
    runtime = Runtime.from_settings(Settings(database_url=database, redis_url=None))
    try:
        with runtime.uow() as uow:
            rows = uow.session.execute(
                select(SequenceVersion.version, SequenceVersion.origin)
                .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
                .where(Sequence.key == "lost-on-price")
                .order_by(SequenceVersion.version)
            ).all()
    finally:
        runtime.close()
    assert [(v, str(o)) for v, o in rows] == [(1, "sync"), (2, "editor"), (3, "sync")]
