"""The Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect

from engine.store import Base, check_models_match, current_revision, upgrade
from engine.store.migrate import downgrade, head_revision

TABLES = {
    "api_tokens",
    "audit_log",
    "email_template_versions",
    "email_templates",
    "enrollments",
    "events",
    "handoff_reads",
    "handoffs",
    "inbound_messages",
    "import_problems",
    "imports",
    "message_incidents",
    "messages",
    "prospects",
    "score_entries",
    "scoring_versions",
    "sequence_versions",
    "sequences",
    "suppressions",
    "tracking_hits",
    "users",
}


def test_upgrade_reaches_head_and_creates_every_table(database_url: str, db_engine: Engine):
    assert current_revision(database_url) == head_revision() is not None
    assert set(inspect(db_engine).get_table_names()) == TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == TABLES


def test_the_revisions_form_one_line_from_base_to_head():
    # Helpers add migrations side by side; each must follow the previous head, never fork.
    from alembic.script import ScriptDirectory

    from engine.store.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    revisions = list(scripts.walk_revisions())
    assert len(scripts.get_heads()) == 1
    assert all(not isinstance(r.down_revision, tuple | list) for r in revisions)
    assert revisions[-1].down_revision is None
    files = [p for p in Path(scripts.versions).glob("*.py") if not p.name.startswith("_")]
    assert len(revisions) == len(files)


def test_models_match_migrations(database_url: str):
    assert check_models_match(database_url) == []


def test_upgrade_is_idempotent(database_url: str):
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    assert check_models_match(database_url) == []


def test_check_notices_a_partial_index_that_lost_its_condition(
    database_url: str, db_engine: Engine
):
    # Alembic itself does not compare index WHERE clauses; check_models_match must.
    with db_engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX uq_enrollments_prospect_id_active")
        connection.exec_driver_sql(
            "CREATE UNIQUE INDEX uq_enrollments_prospect_id_active ON enrollments (prospect_id)"
        )
    diffs = check_models_match(database_url)
    assert [d[:3] for d in diffs] == [
        ("modify_index_where", "enrollments", "uq_enrollments_prospect_id_active")
    ]


def test_downgrade_to_base_and_back(database_url: str, db_engine: Engine):
    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    assert set(inspect(db_engine).get_table_names()) <= {"alembic_version"}
    upgrade(database_url)
    assert check_models_match(database_url) == []


def test_upgrade_creates_the_sqlite_directory(tmp_path: Path):
    path = tmp_path / "var" / "data" / "nurture.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    assert path.exists()
    assert current_revision(url) == head_revision()


def test_current_revision_of_an_empty_database(tmp_path: Path):
    assert current_revision(f"sqlite:///{tmp_path / 'empty.sqlite3'}") is None
