"""A marketer imports a CSV in a real browser (issue #9 point 6): a file in the wrong
encoding is refused at the field; the right one is mapped with its first rows in view,
checked by a background job (its bar polled until the report shows the bad row with its
line), run as a background job whose progress bar
htmx polls to the end, and its refused rows downloaded as a CSV with formulas defused.

Screenshots of each step; no console error (a CSP violation would be one)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tests.browser.test_prospects import sign_in
from tests.support.browser import BrowserPage, live_server
from tests.support.sequences import PRICE, store
from tests.support.web import web_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROWS = 2_500  # three batches: enough for the bar to be seen moving, not to slow the suite


def crm_export(tmp_path: Path) -> Path:
    lines = ["Email,First name,Last name,Company,Status,Lost reason,Notes"]
    for i in range(ROWS):
        status, reason = ("closed_lost", "price") if i % 3 == 0 else ("not_ready", "")
        lines.append(f"p{i}@northwind.example,Pat{i},Lee,Northwind,{status},{reason},met at expo")
    lines.insert(
        1201, '=cmd|"/c calc"!A1,Mallory,Evil,"=HYPERLINK(""https://evil.example"")",lead,,'
    )
    path = tmp_path / "crm-export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_marketer_imports_a_csv_with_a_bad_row(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    latin1 = tmp_path / "excel-export.csv"
    latin1.write_bytes("Email,First name\njose@example.com,José\n".encode("latin-1"))
    good = crm_export(tmp_path)
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        store(web.uow, PRICE, now)
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page
        sign_in(ui, "marketer")

        page.get_by_role("link", name="Imports").click()
        page.wait_for_url(re.compile(r"/imports/$"))
        assert page.get_by_text("No imports yet").is_visible()
        ui.shot("imports-01-empty")

        page.get_by_label("CSV file").set_input_files(str(latin1))
        page.get_by_role("button", name="Upload and map columns").click()
        error = page.locator("#file-error")
        assert "line 2 has the byte 0xE9" in error.inner_text()
        assert "CSV UTF-8" in error.inner_text()
        ui.shot("imports-02-wrong-encoding")

        page.get_by_label("CSV file").set_input_files(str(good))
        page.get_by_role("button", name="Upload and map columns").click()
        page.wait_for_url(re.compile(r"/imports/\d+$"))
        assert page.get_by_text("2,501 rows, read as utf-8").is_visible()
        assert page.get_by_label("Notes").input_value() == "attributes.notes"
        page.get_by_label("Notes").select_option("")  # not worth keeping
        ui.shot("imports-03-mapping")

        page.get_by_role("button", name="Save and check the rows").click()
        page.wait_for_url(re.compile(r"/imports/\d+/check$"))
        # The dry run is a job: its bar is polled until the page reloads with the report.
        refused = page.get_by_role("row", name=re.compile(r"^1202 "))
        refused.wait_for(timeout=60_000)
        assert page.locator("progress#check-bar").count() == 0
        assert "is not an email address" in refused.inner_text()
        ui.shot("imports-04-dry-run")

        page.get_by_role("button", name="Import 2,500 rows").click()
        page.wait_for_url(re.compile(r"/imports/\d+$"))
        ui.shot("imports-05-progress")
        # htmx polls the bar; when the job is done the page reloads with the results.
        page.get_by_role("link", name="Download the refused rows (CSV)").wait_for(timeout=60_000)
        assert page.get_by_text("Finished 2,501 of 2,501 rows (100%)").is_visible()
        bar = page.locator("progress#import-bar")
        assert bar.get_attribute("value") == bar.get_attribute("max") == "2501"
        ui.shot("imports-06-done")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download the refused rows (CSV)").click()
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
        assert rows[0][:3] == ["line", "reason", "Email"]
        assert rows[1][0] == "1202" and rows[1][2] == '\'=cmd|"/c calc"!A1'
        assert rows[1][5] == '\'=HYPERLINK("https://evil.example")'

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
        assert page.get_by_role("link", name="crm-export.csv").is_visible()
        ui.shot("imports-07-list")
        assert ui.unexpected_errors(422) == []
