"""``nurture prospects erase|export EMAIL`` and what an import does with an erased address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from webapp.cli import common, main

ROOT = Path(__file__).resolve().parents[2]
CSV = "email,first_name,last_name,company,status,lost_reason\n" + (
    "zofia@xylophonics.example,Zofia,Quartermaine,Xylophonics,closed_lost,price\n"
    "kept@example.com,Kept,Person,Acme,closed_lost,price\n"
)


@pytest.fixture
def run(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NURTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(ROOT / "sequences"))
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(ROOT / "templates"))
    monkeypatch.setenv("NURTURE_OUTBOX_DIR", str(tmp_path / "outbox"))
    common.settings.cache_clear()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    yield invoke
    common.settings.cache_clear()


def test_export_erase_and_what_is_left(run, tmp_path):  # type: ignore[no-untyped-def]
    people = tmp_path / "people.csv"
    people.write_text(CSV)
    assert run("init").exit_code == 0
    assert run("import", str(people)).exit_code == 0

    exported = run("prospects", "export", "Zofia@Xylophonics.example")
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.output)
    assert document["prospect"]["company"] == "Xylophonics"
    assert document["enrollments"][0]["status"] == "active"

    kept = run("prospects", "erase", "zofia@xylophonics.example", input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    erased = run("prospects", "erase", "zofia@xylophonics.example", "--yes")
    assert erased.exit_code == 0, erased.output
    assert erased.output.startswith("erased prospect 1: rows scrubbed: prospects 1, suppressions 1")

    again = run("prospects", "erase", "zofia@xylophonics.example", "--yes")
    assert again.output.startswith("zofia@xylophonics.example was already erased on ")
    target = tmp_path / "export.json"
    left = run("prospects", "export", "zofia@xylophonics.example", "-o", str(target))
    assert left.exit_code == 0
    document = json.loads(target.read_text())
    assert set(document) == {"format", "generated_at", "subject", "erased"}
    assert "SHA-256" in document["erased"]["held"]

    reimport = run("import", str(people))
    assert reimport.exit_code == 1
    assert f"{people}:2: zofia@xylophonics.example was erased on " in reimport.output
    assert "1 rejected" in reimport.output

    missing = run("prospects", "erase", "nobody@example.com", "--yes")
    assert missing.exit_code == 1 and "no prospect with the address nobody@example.com" in (
        missing.output
    )
