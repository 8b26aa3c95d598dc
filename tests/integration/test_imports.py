"""CSV imports (issue #8 "CSV import never crashes and never stops half-way", issue #9.6):
the 11 crafted CSVs' findings, each a test, on SQLite and PostgreSQL."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from engine.exceptions import ConflictError, InvalidInputError
from engine.services.imports import (
    STALE_AFTER,
    ImportFileError,
    dry_run,
    error_report,
    get_check,
    get_import,
    preview_import,
    refused_rows,
    request_check,
    resume_import,
    run_check,
    run_import,
    set_mapping,
    start_import,
    stop_stale_imports,
    upload_import,
)
from engine.store import AuditEntry, Enrollment, ImportStatus, Message, Prospect
from tests.support.sequences import PRICE, store

ACTOR = "mia@example.com"
GOOD = "email,first_name,status,lost_reason,industry\n"


def upload(uow_factory, data: bytes | str, now: datetime, name: str = "crm.csv"):  # type: ignore[no-untyped-def]
    raw = data.encode() if isinstance(data, str) else data
    return upload_import(uow_factory(), name, raw, ACTOR, now)


def run_all(uow_factory, data: bytes | str, now: datetime, **kwargs):  # type: ignore[no-untyped-def]
    view = upload(uow_factory, data, now)
    start_import(uow_factory(), view.id, ACTOR, now)
    return run_import(uow_factory, view.id, lambda: now, **kwargs)


def prospects(uow_factory) -> dict[str, Prospect]:  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        rows = uow.session.scalars(select(Prospect)).all()
        uow.session.expunge_all()
        return {p.email: p for p in rows}


# --- encodings -----------------------------------------------------------------------------


def test_a_latin1_file_is_refused_with_the_line_and_how_to_fix_it(uow_factory, now):
    data = (GOOD + "ana@example.com,Ana,lead,,\njose@example.com,José,lead,,\n").encode("latin-1")

    with pytest.raises(ImportFileError) as refused:
        upload(uow_factory, data, now)

    message = str(refused.value)
    assert "the file is not UTF-8 text: line 3 has the byte 0xE9" in message
    assert "Windows-1252/latin-1" in message and "CSV UTF-8" in message
    assert refused.value.problems[0][0] == "file"


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (b"", "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_utf8_and_utf16_with_a_bom_are_read(uow_factory, now, bom: bytes, codec: str):
    data = bom + (GOOD + "jose@example.com,José,lead,,\r\n").encode(codec)

    done = run_all(uow_factory, data, now)

    assert (done.created, done.problems) == (1, 0)
    assert prospects(uow_factory)["jose@example.com"].first_name == "José"


def test_utf16_without_a_bom_is_refused_not_guessed(uow_factory, now):
    with pytest.raises(ImportFileError, match="looks like UTF-16 without a byte-order mark"):
        upload(uow_factory, (GOOD + "a@example.com,A,lead,,\n").encode("utf-16-le"), now)


def test_an_empty_file_or_a_file_without_a_header_is_refused(uow_factory, now):
    with pytest.raises(ImportFileError, match="the file is empty"):
        upload(uow_factory, b"  \n", now)
    with pytest.raises(ImportFileError, match="the first line has no column names"):
        upload(uow_factory, ",,\na,b,c\n", now)


# --- bad rows are reported with their line, the rest imported --------------------------------


def test_every_bad_row_is_reported_and_the_rest_imported(uow_factory, now):
    huge = "x" * 131_073  # over the csv module's own field limit, which used to stop the file
    data = (
        GOOD
        + "ana@example.com,Ana,lead,,retail\n"
        + "nul@example.com,Nu\x00l,lead,,\n"
        + f"big@example.com,Big,lead,,{huge}\n"
        + "not-an-email,Bo,lead,,\n"
        + "cy@example.com,Cy,lead,,saas,extra\n"
        + ",Nameless,lead,,\n"
        + "di@example.com,Di,Closed Lost!,,\n"
        + "ed@example.com,Ed,lead,,\n"
    )

    done = run_all(uow_factory, data, now)

    assert (done.status, done.created, done.problems) == (ImportStatus.DONE, 2, 6)
    assert set(prospects(uow_factory)) == {"ana@example.com", "ed@example.com"}
    refused = dict(refused_rows(uow_factory(), done.id))
    assert sorted(refused) == [3, 4, 5, 6, 7, 8]
    assert "first_name: contains a NUL character (U+0000)" in refused[3]
    assert refused[4] == "column 5 holds 131,073 characters; a value may have at most 10,000"
    assert refused[5] == "email: 'not-an-email' is not an email address"
    assert refused[6].startswith("6 values, but the header has 5 columns")
    assert refused[7] == "email: empty; every row needs an email"
    assert refused[8].startswith("status: ")


def test_a_quoted_value_may_span_lines_and_the_line_is_where_the_row_starts(uow_factory, now):
    data = GOOD + 'ana@example.com,"Ana\nMaria",lead,,\nbad,Bo,lead,,\n'

    done = run_all(uow_factory, data, now)

    assert refused_rows(uow_factory(), done.id) == [
        (2, "first_name: contains a control character (U+000A) at position 3; remove it"),
        (4, "email: 'bad' is not an email address"),
    ]


def test_semicolon_files_from_excel_are_read(uow_factory, now):
    done = run_all(uow_factory, "email;first_name\nana@example.com;Ana\n", now)

    assert prospects(uow_factory)["ana@example.com"].first_name == "Ana"
    assert done.created == 1


def test_an_erased_persons_address_is_refused_with_the_date(uow_factory, now):
    from engine.services.privacy.erase import erase_prospect

    first = run_all(uow_factory, GOOD + "zo@example.com,Zo,lead,,\n", now)
    assert first.created == 1
    erase_prospect(uow_factory(), prospects(uow_factory)["zo@example.com"].id, now, actor=ACTOR)

    again = run_all(uow_factory, GOOD + "zo@example.com,Zo,lead,,\nab@example.com,Ab,lead,,\n", now)

    assert (again.created, again.problems) == (1, 1)
    [(line, reason)] = refused_rows(uow_factory(), again.id)
    assert line == 2 and f"was erased on {now:%Y-%m-%d}" in reason


# --- batches, enrollment, resuming -------------------------------------------------------------


def test_rows_enroll_in_batches_like_an_api_upsert(uow_factory, now):
    store(uow_factory, PRICE, now)
    rows = "".join(f"p{i}@example.com,P{i},closed_lost,price,\n" for i in range(25))

    done = run_all(
        uow_factory, GOOD + rows + "p3@example.com,Again,closed_lost,price,\n", now, batch_rows=10
    )

    assert (done.created, done.updated, done.enrolled, done.problems) == (25, 1, 25, 0)
    with uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Enrollment)) == 25
        assert uow.session.scalar(select(func.count()).select_from(Message)) == 25
    assert prospects(uow_factory)["p3@example.com"].first_name == "Again"


def test_a_stopped_run_resumes_where_it_stopped(uow_factory, now):
    rows = "".join(f"p{i}@example.com,P{i},lead,,\n" for i in range(9)) + "bad,B,lead,,\n"
    view = upload(uow_factory, GOOD + rows, now)
    start_import(uow_factory(), view.id, ACTOR, now)

    part = run_import(uow_factory, view.id, lambda: now, max_batches=2, batch_rows=3)
    assert (part.status, part.processed_rows, part.total_rows, part.percent) == (
        ImportStatus.RUNNING,
        6,
        10,
        60,
    )
    done = run_import(uow_factory, view.id, lambda: now, batch_rows=3)
    again = run_import(uow_factory, view.id, lambda: now, batch_rows=3)

    assert (done.status, done.created, done.problems, done.percent) == (
        ImportStatus.DONE,
        9,
        1,
        100,
    )
    assert again == done
    assert len(prospects(uow_factory)) == 9


def test_the_file_is_deleted_once_imported_and_the_audit_log_says_who(uow_factory, now):
    done = run_all(uow_factory, GOOD + "ana@example.com,Ana,lead,,\n", now)

    with pytest.raises(ConflictError, match="its file is no longer kept"):
        preview_import(uow_factory(), done.id)
    with uow_factory() as uow:
        entries = uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.actor, e.action, e.subject) for e in entries] == [
            (ACTOR, "import.started", f"import:{done.id}"),
            ("system", "import.finished", f"import:{done.id}"),
        ]
        assert "1 created" in entries[1].summary


# --- mapping, preview, dry run ------------------------------------------------------------------


def test_columns_map_to_fields_attributes_or_nothing(uow_factory, now):
    data = "E-mail,Given Name,Notes,Secret\nana@example.com,Ana,likes tea,xyz\n"
    view = upload(uow_factory, data, now)
    assert view.mapping == ["email", "first_name", "attributes.notes", "attributes.secret"]

    preview = preview_import(uow_factory(), view.id)
    assert preview.rows == [(2, ["ana@example.com", "Ana", "likes tea", "xyz"])]
    set_mapping(uow_factory(), view.id, ["email", "last_name", "attributes.note", ""])
    start_import(uow_factory(), view.id, ACTOR, now)
    run_import(uow_factory, view.id, lambda: now)

    ana = prospects(uow_factory)["ana@example.com"]
    assert (ana.first_name, ana.last_name, ana.attributes) == (None, "Ana", {"note": "likes tea"})


def test_a_bad_mapping_names_every_problem(uow_factory, now):
    view = upload(uow_factory, "email,name,x\na@example.com,A,1\n", now)

    with pytest.raises(InvalidInputError) as bad:
        set_mapping(uow_factory(), view.id, ["first_name", "first_name", "attributes.X-Y"])

    assert [message for _, message in bad.value.problems] == [
        "column 2 ('name'): 'first_name' is already filled by column 1",
        "column 3 ('x'): 'attributes.X-Y' is not a prospect field or 'attributes.<name>' "
        "(lowercase letters, digits and '_')",
        "no column is mapped to 'email', which identifies each prospect",
    ]


def test_a_dry_run_reports_and_changes_nothing(uow_factory, now):
    run_all(uow_factory, GOOD + "ana@example.com,Ana,lead,,\n", now)
    data = GOOD + "ana@example.com,Ana,lead,,\nbo@example.com,Bo,lead,,\nbad,X,lead,,\n"
    view = upload(uow_factory, data, now)

    report = dry_run(uow_factory(), view.id)

    assert (report.total, report.good, report.bad) == (3, 2, 1)
    assert (report.would_create, report.would_update) == (1, 1)
    assert report.refused == [(4, "email: 'bad' is not an email address")]
    assert set(prospects(uow_factory)) == {"ana@example.com"}
    assert get_import(uow_factory(), view.id).status == ImportStatus.UPLOADED


def test_the_check_job_writes_its_progress_and_the_dry_runs_report(uow_factory, now):
    run_all(uow_factory, GOOD + "ana@example.com,Ana,lead,,\n", now)
    data = (
        GOOD + "ana@example.com,Ana,lead,,\nbo@example.com,Bo,lead,,\nbad,X,lead,,\n"
        "bo@example.com,Bo,lead,,\n"  # a second row of an address the file creates
    )
    view = upload(uow_factory, data, now)
    assert get_check(uow_factory(), view.id).state == "none"
    assert request_check(uow_factory(), view.id, now).state == "queued"

    state = run_check(uow_factory, view.id, lambda: now, chunk_rows=1)

    assert state.state == "done" and state.checked == state.total == 4
    stored = get_check(uow_factory(), view.id)
    assert stored.report == dry_run(uow_factory(), view.id) == state.report
    assert (stored.report.would_create, stored.report.would_update) == (1, 2)
    assert stored.report.refused == [(4, "email: 'bad' is not an email address")]
    assert set(prospects(uow_factory)) == {"ana@example.com"}
    # The same mapping again keeps the report; a new mapping clears it.
    assert request_check(uow_factory(), view.id, now).state == "done"
    set_mapping(uow_factory(), view.id, ["email", "first_name", "", "", ""])
    assert get_check(uow_factory(), view.id).state == "none"


def test_a_check_of_an_old_mapping_writes_nothing(uow_factory, now):
    view = upload(uow_factory, GOOD + "ana@example.com,Ana,lead,,\n", now)
    request_check(uow_factory(), view.id, now)
    set_mapping(uow_factory(), view.id, ["email", "", "", "", ""])  # while it is queued

    assert run_check(uow_factory, view.id, lambda: now).state == "none"
    assert get_check(uow_factory(), view.id).state == "none"


def test_a_check_whose_worker_died_is_marked_failed_and_can_be_asked_again(uow_factory, now):
    view = upload(uow_factory, GOOD + "ana@example.com,Ana,lead,,\n", now)
    request_check(uow_factory(), view.id, now)

    assert stop_stale_imports(uow_factory(), now + STALE_AFTER * 2) == [view.id]

    failed = get_check(uow_factory(), view.id)
    assert failed.state == "failed" and "the check stopped at row 0" in (failed.error or "")
    assert request_check(uow_factory(), view.id, now).state == "queued"
    assert run_check(uow_factory, view.id, lambda: now).state == "done"


def test_a_queued_import_no_worker_started_is_stopped_after_an_hour(uow_factory, now):
    view = upload(uow_factory, GOOD + "ana@example.com,Ana,lead,,\n", now)
    start_import(uow_factory(), view.id, ACTOR, now)

    assert stop_stale_imports(uow_factory(), now + STALE_AFTER * 2) == []  # a busy queue
    assert stop_stale_imports(uow_factory(), now + timedelta(hours=2)) == [view.id]

    stopped = get_import(uow_factory(), view.id)
    assert stopped.status == ImportStatus.FAILED and "no worker started it" in (stopped.error or "")
    resume_import(uow_factory(), view.id, ACTOR, now)
    assert run_import(uow_factory, view.id, lambda: now).created == 1


# --- the error report --------------------------------------------------------------------------


def test_the_error_report_neutralises_formulas_and_the_data_keeps_them(uow_factory, now):
    data = (
        "email,first_name,company\n"
        'ana@example.com,=HYPERLINK("https://evil.example"),+1 Corp\n'
        "bad-address,@SUM(A1),-2+3\n"
    )

    done = run_all(uow_factory, data, now)
    text, filename = error_report(uow_factory(), done.id)

    assert filename == "crm-refused-rows.csv"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["line", "reason", "email", "first_name", "company"],
        ["3", "email: 'bad-address' is not an email address", "bad-address", "'@SUM(A1)", "'-2+3"],
    ]
    ana = prospects(uow_factory)["ana@example.com"]
    assert (ana.first_name, ana.company) == ('=HYPERLINK("https://evil.example")', "+1 Corp")


def test_a_reimport_steps_the_active_enrollment_so_an_exit_rule_fires(uow_factory, now):
    store(uow_factory, PRICE, now)
    run_all(uow_factory, GOOD + "ana@example.com,Ana,closed_lost,price,\n", now)

    again = run_all(uow_factory, GOOD + "ana@example.com,Ana,opportunity,,\n", now)

    assert (again.created, again.updated, again.enrolled) == (0, 1, 0)
    with uow_factory() as uow:
        [enrollment] = uow.session.scalars(select(Enrollment)).all()
        assert (enrollment.status, enrollment.exit_reason is not None) == ("exited", True)


def test_a_long_import_refreshes_the_statistics_its_lookups_are_planned_with(uow_factory, now):
    with uow_factory() as uow:
        if not uow.is_postgres:
            pytest.skip("ANALYZE and cached plans are PostgreSQL's")
    rows = "".join(f"p{i}@example.com,P{i},lead,,\n" for i in range(5))

    def analyzed() -> int:
        with uow_factory() as uow:
            return uow.session.execute(
                text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'prospects'")
            ).scalar_one()

    before = analyzed()
    assert run_all(uow_factory, GOOD + rows, now, batch_rows=1).created == 5
    # after batches 1, 2 and 4 of 5 (ANALYZE reports its count to shared memory at once)
    assert analyzed() == before + 3
