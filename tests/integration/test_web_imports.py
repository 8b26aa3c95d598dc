"""The import pages through the Flask test client (issue #9 point 6): upload, refusals next
to the field, the mapping with a preview, the dry run, the background run with its
progress partial, the error report; roles and CSRF."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from engine.services.imports import (
    MAX_UPLOAD_BYTES,
    STALE_AFTER,
    get_import,
    request_check,
    run_check,
    start_import,
    stop_stale_imports,
)
from engine.store import AuditEntry, Import, ImportStatus, Prospect
from tests.support.web import EMAILS, Web, WebClient

CSV = (
    "Email,First name,Status,Lost reason,Industry\n"
    "ana@example.com,Ana,closed_lost,price,retail\n"
    "not-an-email,Bo,lead,,\n"
    'cy@example.com,=HYPERLINK("x"),lead,,saas\n'
)


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def words(response) -> str:  # type: ignore[no-untyped-def]
    """The page's text as a reader sees it (tags gone, spaces collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def upload(client: WebClient, data: bytes, name: str = "crm.csv"):  # type: ignore[no-untyped-def]
    return client.post("/imports/", {"file": (io.BytesIO(data), name)})


def import_id(response) -> int:  # type: ignore[no-untyped-def]
    match = re.search(r"/imports/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def test_the_whole_flow_from_upload_to_the_error_report(web: Web):
    marketer = web.client("marketer")
    assert "No imports yet" in text(marketer.get("/imports/"))

    uploaded = upload(marketer, CSV.encode())
    assert uploaded.status_code == 302
    number = import_id(uploaded)

    mapping = text(marketer.get(f"/imports/{number}"))
    assert "3 rows, read as utf-8" in mapping
    assert '<option value="first_name" selected>' in mapping
    assert "custom attribute “industry”" in mapping
    assert "ana@example.com" in mapping  # the preview of the first rows

    form = {"column-0": "email", "column-1": "first_name", "column-2": "status"}
    form |= {"column-3": "lost_reason", "column-4": "attributes.industry"}
    saved = marketer.post(f"/imports/{number}/mapping", form)
    assert saved.headers["Location"].endswith(f"/imports/{number}/check")
    assert web.runtime.queue.join(timeout=30)  # the dry run is a job, not the request

    check = words(marketer.get(f"/imports/{number}/check"))
    assert "Will be imported 2" in check and "Will be refused 1" in check
    assert "Email: &#39;not-an-email&#39; is not an email address" in check
    with web.uow() as uow:
        assert uow.session.scalars(select(Prospect)).all() == []  # a dry run changes nothing

    started = marketer.post(f"/imports/{number}/run")
    assert started.headers["Location"].endswith(f"/imports/{number}")
    assert web.runtime.queue.join(timeout=30)

    progress = marketer.client.get(f"/imports/{number}/progress", headers={"HX-Request": "true"})
    assert progress.headers["HX-Refresh"] == "true"
    assert 'value="3" max="3"' in text(progress) and "hx-trigger" not in text(progress)
    assert "3 of 3 rows (100%)" in words(progress)
    done = words(marketer.get(f"/imports/{number}"))
    assert "Created 2" in done and "Download the refused rows (CSV)" in done
    assert "not-an-email" in done

    report = marketer.get(f"/imports/{number}/refused.csv")
    assert report.headers["Content-Disposition"] == 'attachment; filename="crm-refused-rows.csv"'
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert rows[1][:3] == ["3", "Email: 'not-an-email' is not an email address", "not-an-email"]
    with web.uow() as uow:
        cy = uow.session.scalars(select(Prospect).where(Prospect.email == "cy@example.com")).one()
        assert cy.first_name == '=HYPERLINK("x")'  # kept as data
        entries = uow.session.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.subject == f"import:{number}")
            .order_by(AuditEntry.id)
        ).all()
        assert [tuple(e) for e in entries] == [
            ("import.started", EMAILS["marketer"]),
            ("import.finished", "system"),
        ]


def test_a_running_import_polls_until_it_is_done(web: Web):
    marketer = web.client("marketer")
    number = import_id(upload(marketer, CSV.encode()))
    start_import(web.uow(), number, EMAILS["marketer"], web.now())  # queued, no worker yet

    page = text(marketer.get(f"/imports/{number}"))
    assert "Waiting for a worker… 0 of 3 rows (0%)" in words(marketer.get(f"/imports/{number}"))
    assert f'hx-get="/imports/{number}/progress" hx-trigger="every 1s"' in page


def test_the_dry_run_shows_its_progress_until_its_job_has_run(web: Web):
    marketer = web.client("marketer")
    number = import_id(upload(marketer, CSV.encode()))
    untouched = words(marketer.get(f"/imports/{number}/check"))
    assert "Not checked yet: 0 of 3 rows (0%)" in untouched and "Check the rows" in untouched

    request_check(web.uow(), number, web.now())  # queued, no worker yet
    page = text(marketer.get(f"/imports/{number}/check"))
    assert "Waiting for a worker… 0 of 3 rows (0%)" in words(
        marketer.get(f"/imports/{number}/check")
    )
    assert f'hx-get="/imports/{number}/check/progress" hx-trigger="every 1s"' in page
    polled = marketer.client.get(
        f"/imports/{number}/check/progress", headers={"HX-Request": "true"}
    )
    assert "HX-Refresh" not in polled.headers

    run_check(web.uow, number, web.now)
    done = marketer.client.get(f"/imports/{number}/check/progress", headers={"HX-Request": "true"})
    assert done.headers["HX-Refresh"] == "true" and "hx-trigger" not in text(done)
    assert "Will be refused 1" in words(marketer.get(f"/imports/{number}/check"))


def test_a_killed_import_is_stopped_by_the_tick_and_resumed_from_its_page(web: Web):
    marketer = web.client("marketer")
    number = import_id(upload(marketer, CSV.encode()))
    start_import(web.uow(), number, EMAILS["marketer"], web.now())
    with web.uow() as uow:  # as a worker killed mid-slice leaves it
        row = uow.session.get(Import, number)
        row.status, row.processed_rows, row.heartbeat_at = ImportStatus.RUNNING, 1, web.now()
        uow.commit()
    assert stop_stale_imports(web.uow(), web.now() + STALE_AFTER / 2) == []  # slow, not dead

    assert stop_stale_imports(web.uow(), web.now() + STALE_AFTER * 2) == [number]

    page = words(marketer.get(f"/imports/{number}"))
    assert "The import stopped: no worker made progress since" in page
    assert "1 of 3 rows were imported" in page and "Resume from row 2" in page
    resumed = marketer.post(f"/imports/{number}/resume")
    assert resumed.headers["Location"].endswith(f"/imports/{number}")
    assert web.runtime.queue.join(timeout=30)
    done = get_import(web.uow(), number)
    assert done.status == ImportStatus.DONE and done.processed_rows == 3
    with web.uow() as uow:
        actions = uow.session.scalars(
            select(AuditEntry.action).where(AuditEntry.subject == f"import:{number}")
        ).all()
        assert "import.stopped" in actions and "import.resumed" in actions
    again = marketer.post(f"/imports/{number}/resume")  # done: nothing to resume
    assert again.status_code == 302 and "resume" not in again.headers["Location"]


def test_an_upload_in_the_wrong_encoding_is_refused_next_to_the_field(web: Web):
    marketer = web.client("marketer")

    refused = upload(marketer, "email,name\njosé@example.com,José\n".encode("latin-1"))

    assert refused.status_code == 422
    page = text(refused)
    assert (
        'id="file-error" role="alert">The file is not UTF-8 text: line 2 has the byte 0xE9' in page
    )
    assert 'aria-invalid="true"' in page


def test_an_upload_over_the_size_limit_is_refused_with_the_reason(web: Web):
    marketer = web.client("marketer")

    too_big = upload(marketer, b"email\n" + b"a" * MAX_UPLOAD_BYTES)
    way_too_big = upload(marketer, b"email\n" + b"a" * (MAX_UPLOAD_BYTES + 2 * 1_048_576))

    assert too_big.status_code == 422 and "at most 50 MB can be imported" in text(too_big)
    assert way_too_big.status_code == 413
    assert "The file is larger than 50 MB: split it into several files." in text(way_too_big)


def test_no_file_and_a_bad_mapping_are_explained(web: Web):
    marketer = web.client("marketer")
    assert "Choose a CSV file to upload." in text(marketer.post("/imports/", {}))
    number = import_id(upload(marketer, CSV.encode()))

    bad = marketer.post(f"/imports/{number}/mapping", {"column-0": "first_name"})

    assert bad.status_code == 422
    assert "no column is mapped to &#39;email&#39;, which identifies each prospect" in text(bad)


def test_sales_cannot_import_and_posts_need_the_csrf_token(web: Web):
    marketer = web.client("marketer")
    number = import_id(upload(marketer, CSV.encode()))

    assert web.client("sales").get("/imports/").status_code == 403
    assert web.client("sales").get(f"/imports/{number}/refused.csv").status_code == 403
    assert marketer.post(f"/imports/{number}/run", csrf=False).status_code == 400
    assert web.client("admin").get(f"/imports/{number}").status_code == 200
    assert marketer.get("/imports/999999").status_code == 404


def test_an_upload_can_be_discarded_before_it_runs(web: Web):
    marketer = web.client("marketer")
    number = import_id(upload(marketer, CSV.encode()))

    gone = marketer.post(f"/imports/{number}/discard")

    assert gone.headers["Location"].endswith("/imports/")
    assert marketer.get(f"/imports/{number}").status_code == 404
    assert "No imports yet" in text(marketer.get("/imports/"))


def test_the_imports_page_is_in_the_menu_for_marketers_only(web: Web):
    assert 'href="/imports/"' in text(web.client("marketer").get("/"))
    assert 'href="/imports/"' not in text(web.client("sales").get("/"))


def test_status_is_shown_as_a_badge(web: Web):
    marketer = web.client("marketer")
    upload(marketer, CSV.encode())
    listing = text(marketer.get("/imports/"))
    assert f'badge-neutral">{ImportStatus.UPLOADED}<' in listing


def test_only_job_functions_can_be_queued_by_path(web: Web):
    with pytest.raises(ValueError, match=r"jobs live in workers\.jobs"):
        web.runtime.queue.enqueue_by_path("os.system", "echo hi")
    with pytest.raises(ValueError, match="names no job function"):
        web.runtime.queue.enqueue_by_path("workers.jobs.nothing_here", 1)


def test_hostile_values_in_a_csv_are_shown_as_text(web: Web):
    marketer = web.client("marketer")
    hostile = '<script>alert(1)</script>,"""><img src=x onerror=alert(2)>"\n'
    number = import_id(upload(marketer, ("email,first_name\n" + hostile).encode()))

    marketer.post(f"/imports/{number}/check")
    assert web.runtime.queue.join(timeout=30)
    pages = [marketer.get(f"/imports/{number}"), marketer.get(f"/imports/{number}/check")]
    assert "is not an email address" in pages[1].get_data(as_text=True)  # the report, shown

    for page in pages:
        body = page.get_data(as_text=True)
        assert "<script>alert(1)" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
