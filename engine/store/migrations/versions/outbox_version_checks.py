"""The outbox's references to version rows checked once per statement, not once per row
(issue #12 target 3).

``messages.sequence_version_id`` and ``messages.template_version_id`` were foreign keys.
PostgreSQL checks a foreign key with one query per inserted row (a trigger running
``SELECT 1 ... FOR KEY SHARE`` through SPI): a tick batch of 500 emails ran 1,000 such
queries for these two alone, and each of them took a row lock on one of a handful of
version rows, which two ticks at once share as a MultiXact. Together the outbox's four
foreign keys were a fifth of the tick's database CPU (``bench/README.md``).

What the two foreign keys guaranteed, and how it still holds:

- *a message never names a version that does not exist when it is written*: a trigger on
  ``messages`` checks every row a statement inserted with one anti-join, after the
  statement (PostgreSQL: a statement trigger over the transition table; SQLite, which has
  no statement triggers, a row trigger: its foreign keys were row checks too), and a row
  trigger checks an UPDATE that changes either column; each fails with the foreign-key
  violation's SQLSTATE (PostgreSQL) or a constraint error (SQLite), so callers see the
  same ``IntegrityError``;
- *the version a message names is never deleted (nor its id changed) afterwards*: both
  version tables are append-only: nothing in the application deletes a version (the ORM
  already refuses to update one, ``engine.store.sequences`` and ``templates``; running
  enrollments and sent emails are read against them), and now the database refuses a
  DELETE, a TRUNCATE and a change of ``id`` as well. So no lock is needed to keep a
  checked row alive until commit, which is what the foreign key's ``KEY SHARE`` was for.

``tests/integration/test_store_constraints.py`` holds both halves on both databases. The
outbox's other two foreign keys (enrollments, prospects) stay as they are.

Revision ID: outbox_version_checks
Revises: outbox_write_indexes
Create Date: 2026-11-30 09:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "outbox_version_checks"
down_revision: str | Sequence[str] | None = "outbox_write_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQUENCE_FK = "fk_messages_sequence_version_id_sequence_versions"
_TEMPLATE_FK = "fk_messages_template_version_id_email_template_versions"
_VERSION_TABLES = ("sequence_versions", "email_template_versions")

# PostgreSQL: one anti-join per statement over the rows it inserted or updated.
_PG_CHECK = """
CREATE FUNCTION messages_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE FUNCTION message_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sequence_versions WHERE id = NEW.sequence_version_id)
       OR (NEW.template_version_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM email_template_versions WHERE id = NEW.template_version_id)) THEN
        RAISE EXCEPTION 'message % names a sequence or template version that does not exist',
            NEW.id USING ERRCODE = 'foreign_key_violation', TABLE = 'messages';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_references_exist AFTER INSERT ON messages
    REFERENCING NEW TABLE AS checked_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_references_exist();
CREATE TRIGGER message_references_exist AFTER UPDATE OF sequence_version_id, template_version_id
    ON messages FOR EACH ROW
    WHEN (NEW.sequence_version_id IS DISTINCT FROM OLD.sequence_version_id
          OR NEW.template_version_id IS DISTINCT FROM OLD.template_version_id)
    EXECUTE FUNCTION message_references_exist();
CREATE FUNCTION rows_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted nor renumbered: messages name them', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END $$;
"""
_PG_APPEND_ONLY = """
CREATE TRIGGER {table}_append_only BEFORE DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION rows_never_deleted();
CREATE TRIGGER {table}_never_renumbered BEFORE UPDATE OF id ON {table}
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION rows_never_deleted();
CREATE TRIGGER {table}_never_truncated BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION rows_never_deleted();
"""

# SQLite: row triggers (its foreign keys were row checks as well); RAISE(ABORT) is a
# constraint error, an IntegrityError like the foreign key's.
_SQLITE_MISSING = (
    "NOT EXISTS (SELECT 1 FROM sequence_versions WHERE id = NEW.sequence_version_id) "
    "OR (NEW.template_version_id IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM email_template_versions WHERE id = NEW.template_version_id))"
)
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER messages_references_exist BEFORE INSERT ON messages WHEN {_SQLITE_MISSING} "
    "BEGIN SELECT RAISE(ABORT, 'a message names a version that does not exist'); END",
    "CREATE TRIGGER message_references_exist BEFORE UPDATE OF sequence_version_id, "
    f"template_version_id ON messages WHEN {_SQLITE_MISSING} "
    "BEGIN SELECT RAISE(ABORT, 'a message names a version that does not exist'); END",
)
_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER {table}_append_only BEFORE DELETE ON {table} "
    "BEGIN SELECT RAISE(ABORT, '{table} rows are never deleted: messages name them'); END",
    "CREATE TRIGGER {table}_never_renumbered BEFORE UPDATE OF id ON {table} "
    "WHEN NEW.id IS NOT OLD.id "
    "BEGIN SELECT RAISE(ABORT, '{table} rows are never renumbered: messages name them'); END",
)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint(_SEQUENCE_FK, type_="foreignkey")
        batch_op.drop_constraint(_TEMPLATE_FK, type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_CHECK)
        for table in _VERSION_TABLES:
            op.execute(_PG_APPEND_ONLY.format(table=table))
        return
    for statement in _SQLITE_TRIGGERS:
        op.execute(statement)
    for table in _VERSION_TABLES:
        for statement in _SQLITE_APPEND_ONLY:
            op.execute(statement.format(table=table))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    triggers = [("messages_references_exist", "messages"), ("message_references_exist", "messages")]
    for table in _VERSION_TABLES:
        triggers += [(f"{table}_append_only", table), (f"{table}_never_renumbered", table)]
        if postgres:
            triggers.append((f"{table}_never_truncated", table))
    for trigger, table in triggers:
        op.execute(f"DROP TRIGGER {trigger} ON {table}" if postgres else f"DROP TRIGGER {trigger}")
    if postgres:
        op.execute("DROP FUNCTION rows_never_deleted()")
        op.execute("DROP FUNCTION message_references_exist()")
        op.execute("DROP FUNCTION messages_references_exist()")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.create_foreign_key(
            _SEQUENCE_FK, "sequence_versions", ["sequence_version_id"], ["id"]
        )
        batch_op.create_foreign_key(
            _TEMPLATE_FK, "email_template_versions", ["template_version_id"], ["id"]
        )
