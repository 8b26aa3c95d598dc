"""``nurture sequences sync`` refuses what ``nurture sequences validate`` refuses (issue #7.3).

Both find files with one function (``engine.spec.loader.spec_files``) and check them with
one (``load_specs``). Two files with the same key used to be both stored, as versions of
one sequence that every later sync flipped between.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from webapp.cli import common, main

ROOT = Path(__file__).resolve().parents[2]
PRICE_FILE = ROOT / "sequences" / "lost-on-price.yaml"

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """The CLI in-process on a private, migrated SQLite database."""
    monkeypatch.setenv("NURTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(ROOT / "templates"))
    common.settings.cache_clear()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    assert invoke("init", "--no-sync").exit_code == 0
    yield invoke
    common.settings.cache_clear()


def folder(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    path = tmp_path / name
    path.mkdir()
    for file, text in files.items():
        (path / file).write_text(text, encoding="utf-8")
    return path


def price(subject: str) -> str:
    """The shipped lost-on-price sequence with another first subject (same key)."""
    text = PRICE_FILE.read_text(encoding="utf-8")
    start = text.index('subject: "') + len('subject: "')
    return text[:start] + subject + text[text.index('"', start) :]


def listing(run: Run) -> str:
    result = run("sequences", "list")
    assert result.exit_code == 0, result.output
    return result.output


def test_two_files_with_one_key_are_both_refused_by_sync_as_by_validate(
    run: Run, tmp_path: Path
) -> None:
    both = folder(tmp_path, "both", {"a.yaml": price("First"), "b.yaml": price("Second")})

    checked = run("sequences", "validate", str(both))
    synced = run("sequences", "sync", str(both))

    assert (checked.exit_code, synced.exit_code) == (1, 1)
    problem = f"sequence key 'lost-on-price' is already used by {both / 'a.yaml'}:"
    assert problem in checked.output
    assert problem in synced.output
    assert "created 0, updated 0, unchanged 0" in synced.output
    assert "lost-on-price" not in listing(run)


def test_a_duplicate_never_flips_the_stored_sequence(run: Run, tmp_path: Path) -> None:
    one = folder(tmp_path, "one", {"a.yaml": price("First")})
    assert run("sequences", "sync", str(one)).exit_code == 0
    assert "lost-on-price" in listing(run)

    (one / "b.yaml").write_text(price("Second"), encoding="utf-8")
    for _ in range(2):  # each sync used to store the other file as the newest version
        assert run("sequences", "sync", str(one)).exit_code == 1
        line = next(line for line in listing(run).splitlines() if "lost-on-price" in line)
        assert " v1 " in line


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"a.yaml": price("A"), "b.yml": price("B")}, id="same-key-yaml-and-yml"),
        pytest.param({"scoring.yaml": "", "scoring.yml": ""}, id="two-scoring-files"),
        pytest.param({"a.yaml": "key: [unclosed\n"}, id="broken-yaml"),
        pytest.param({"notes.txt": "not a sequence"}, id="no-yaml-files"),
        pytest.param({"a.yaml": price("fine")}, id="all-good"),
    ],
)
def test_sync_and_validate_agree(run: Run, tmp_path: Path, files: dict[str, Any]) -> None:
    target = folder(tmp_path, "target", files)
    checked = run("sequences", "validate", str(target))
    synced = run("sequences", "sync", str(target))

    assert checked.exit_code == synced.exit_code, (checked.output, synced.output)
    problems = [line for line in checked.output.splitlines() if line.startswith(str(target))]
    assert all(problem in synced.output for problem in problems), synced.output
    if checked.exit_code:
        assert "created 0" in synced.output


def test_simulate_finds_a_sequence_by_the_key_inside_its_file(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(PRICE_FILE, renamed / "price-2026.yaml")
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(renamed))
    common.settings.cache_clear()

    prospect = '{"status": "closed_lost", "lost_reason": "price"}'
    result = run("simulate", "lost-on-price", "--prospect", prospect, "--days", "5")
    assert result.exit_code == 0, result.output
    assert "value-recap" in result.output
