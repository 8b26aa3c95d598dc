"""The outbox's references to its enrollment and prospect checked once per statement too
(issue #12 target 3).

``outbox_version_checks`` replaced the per-row foreign keys to the version tables; the two
left, ``messages.enrollment_id`` and ``messages.prospect_id``, were then most of what a
tick batch's INSERT cost the database: 1,000 SPI queries per 500 emails, each a
``SELECT 1 ... FOR KEY SHARE``, and the one on ``prospects`` writes a row lock (and its
WAL record) into each prospect's row. ``EXPLAIN ANALYZE`` of real batches: 25-45 ms of
the INSERT's 35-80 ms; the statement check that replaces them, well under a millisecond.

What the foreign keys guaranteed, and how it still holds (the same two halves as for the
versions):

- *a message names an enrollment and a prospect that exist when it is written*: the
  statement trigger of ``outbox_version_checks`` now checks all four references with one
  anti-join per statement (PostgreSQL; a row trigger on SQLite), and the row trigger on
  UPDATE checks a change of any of the four columns; the error is the foreign-key
  violation's SQLSTATE (SQLite: a constraint error), an ``IntegrityError`` as before;
- *they are never deleted (nor renumbered) afterwards*: nothing deletes an enrollment (an
  ended one is kept: its messages, events and handoffs are reported against it) or a
  prospect (an erasure leaves an anonymous tombstone row, ``engine.services.privacy.erase``,
  so every count stays true); the database now refuses a DELETE, a TRUNCATE and a change
  of ``id`` on both tables, as it does for the version tables. Their other referrers
  (events, handoffs, score entries, ...) keep their foreign keys.

``tests/integration/test_store_version_references.py`` holds both halves for all four
references on both databases.

Revision ID: outbox_parent_checks
Revises: outbox_version_checks
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "outbox_parent_checks"
down_revision: str | Sequence[str] | None = "outbox_version_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_KEYS = {
    "fk_messages_enrollment_id_enrollments": ("enrollment_id", "enrollments"),
    "fk_messages_prospect_id_prospects": ("prospect_id", "prospects"),
}
_PARENTS = ("enrollments", "prospects")
_PREVIOUS_SQLITE_MISSING = (
    "NOT EXISTS (SELECT 1 FROM sequence_versions WHERE id = NEW.sequence_version_id) "
    "OR (NEW.template_version_id IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM email_template_versions WHERE id = NEW.template_version_id))"
)

# PostgreSQL: the functions of ``outbox_version_checks``, widened to the four references.
# Scalar subqueries, an index probe per inserted row and reference, whatever the tables'
# sizes: ``NOT EXISTS`` under ``OR`` becomes a subplan the planner may hash instead, and
# hashing ``enrollments`` and ``prospects`` whole for a batch of 500 took 80-100 ms
# (the probes: ~3 ms).
_PG_CHECKS = """
CREATE OR REPLACE FUNCTION messages_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM checked_messages AS m
        WHERE (SELECT true FROM enrollments AS e WHERE e.id = m.enrollment_id) IS NULL
           OR (SELECT true FROM prospects AS p WHERE p.id = m.prospect_id) IS NULL
           OR (SELECT true FROM sequence_versions AS v WHERE v.id = m.sequence_version_id) IS NULL
           OR (m.template_version_id IS NOT NULL AND (
                SELECT true FROM email_template_versions AS t WHERE t.id = m.template_version_id
              ) IS NULL)
    ) THEN
        RAISE EXCEPTION 'a message names an enrollment, prospect or version that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'messages';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION message_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM enrollments WHERE id = NEW.enrollment_id)
       OR NOT EXISTS (SELECT 1 FROM prospects WHERE id = NEW.prospect_id)
       OR NOT EXISTS (SELECT 1 FROM sequence_versions WHERE id = NEW.sequence_version_id)
       OR (NEW.template_version_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM email_template_versions WHERE id = NEW.template_version_id)) THEN
        RAISE EXCEPTION 'message % names an enrollment, prospect or version that does not exist',
            NEW.id USING ERRCODE = 'foreign_key_violation', TABLE = 'messages';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER message_references_exist ON messages;
CREATE TRIGGER message_references_exist
    AFTER UPDATE OF enrollment_id, prospect_id, sequence_version_id, template_version_id
    ON messages FOR EACH ROW
    WHEN (NEW.enrollment_id IS DISTINCT FROM OLD.enrollment_id
          OR NEW.prospect_id IS DISTINCT FROM OLD.prospect_id
          OR NEW.sequence_version_id IS DISTINCT FROM OLD.sequence_version_id
          OR NEW.template_version_id IS DISTINCT FROM OLD.template_version_id)
    EXECUTE FUNCTION message_references_exist();
"""
# Downgrade: the checks as ``outbox_version_checks`` made them.
_PG_VERSION_CHECKS = """
CREATE OR REPLACE FUNCTION messages_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM checked_messages AS m
        WHERE NOT EXISTS (SELECT 1 FROM sequence_versions AS v WHERE v.id = m.sequence_version_id)
           OR (m.template_version_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM email_template_versions AS t WHERE t.id = m.template_version_id))
    ) THEN
        RAISE EXCEPTION 'a message names a sequence or template version that does not exist'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'messages';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION message_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sequence_versions WHERE id = NEW.sequence_version_id)
       OR (NEW.template_version_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM email_template_versions WHERE id = NEW.template_version_id)) THEN
        RAISE EXCEPTION 'message % names a sequence or template version that does not exist',
            NEW.id USING ERRCODE = 'foreign_key_violation', TABLE = 'messages';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER message_references_exist ON messages;
CREATE TRIGGER message_references_exist AFTER UPDATE OF sequence_version_id, template_version_id
    ON messages FOR EACH ROW
    WHEN (NEW.sequence_version_id IS DISTINCT FROM OLD.sequence_version_id
          OR NEW.template_version_id IS DISTINCT FROM OLD.template_version_id)
    EXECUTE FUNCTION message_references_exist();
"""
_PG_APPEND_ONLY = """
CREATE TRIGGER {table}_append_only BEFORE DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION rows_never_deleted();
CREATE TRIGGER {table}_never_renumbered BEFORE UPDATE OF id ON {table}
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION rows_never_deleted();
CREATE TRIGGER {table}_never_truncated BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION rows_never_deleted();
"""

_SQLITE_MISSING = (
    "NOT EXISTS (SELECT 1 FROM enrollments WHERE id = NEW.enrollment_id) "
    "OR NOT EXISTS (SELECT 1 FROM prospects WHERE id = NEW.prospect_id) "
    f"OR {_PREVIOUS_SQLITE_MISSING}"
)
_SQLITE_MESSAGE_TRIGGERS = (
    "CREATE TRIGGER messages_references_exist BEFORE INSERT ON messages WHEN {missing} "
    "BEGIN SELECT RAISE(ABORT, 'a message names a row that does not exist'); END",
    "CREATE TRIGGER message_references_exist BEFORE UPDATE OF {columns} ON messages "
    "WHEN {missing} "
    "BEGIN SELECT RAISE(ABORT, 'a message names a row that does not exist'); END",
)
_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER {table}_append_only BEFORE DELETE ON {table} "
    "BEGIN SELECT RAISE(ABORT, '{table} rows are never deleted: messages name them'); END",
    "CREATE TRIGGER {table}_never_renumbered BEFORE UPDATE OF id ON {table} "
    "WHEN NEW.id IS NOT OLD.id "
    "BEGIN SELECT RAISE(ABORT, '{table} rows are never renumbered: messages name them'); END",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if not postgres:  # rebuilt by the batch below, with the table: made again after it
        _drop_sqlite_message_triggers()
    with op.batch_alter_table("messages") as batch_op:
        for name in _FOREIGN_KEYS:
            batch_op.drop_constraint(name, type_="foreignkey")
    if postgres:
        op.execute(_PG_CHECKS)
        for table in _PARENTS:
            op.execute(_PG_APPEND_ONLY.format(table=table))
        return
    columns = "enrollment_id, prospect_id, sequence_version_id, template_version_id"
    for statement in _SQLITE_MESSAGE_TRIGGERS:
        op.execute(statement.format(missing=_SQLITE_MISSING, columns=columns))
    for table in _PARENTS:
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement.format(table=table))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _PARENTS:
        names = [f"{table}_append_only", f"{table}_never_renumbered"]
        for trigger in [*names, f"{table}_never_truncated"] if postgres else names:
            op.execute(
                f"DROP TRIGGER {trigger} ON {table}" if postgres else f"DROP TRIGGER {trigger}"
            )
    if not postgres:
        _drop_sqlite_message_triggers()
    with op.batch_alter_table("messages") as batch_op:
        for name, (column, parent) in _FOREIGN_KEYS.items():
            batch_op.create_foreign_key(name, parent, [column], ["id"])
    if postgres:  # the previous revision's checks, on the versions only
        op.execute(_PG_VERSION_CHECKS)
        return
    for statement in _SQLITE_MESSAGE_TRIGGERS:
        op.execute(
            statement.format(
                missing=_PREVIOUS_SQLITE_MISSING, columns="sequence_version_id, template_version_id"
            )
        )


def _drop_sqlite_message_triggers() -> None:
    op.execute("DROP TRIGGER messages_references_exist")
    op.execute("DROP TRIGGER message_references_exist")
