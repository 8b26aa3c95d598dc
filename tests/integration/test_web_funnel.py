"""The funnel page against a known history (tests/support/funnel_world.py): every figure,
each filter, the CSV downloads (neutralised cells), both teams, bad filters."""

from __future__ import annotations

import csv
import io
import re

import pytest

from engine.core.funnel import STAGES
from engine.services.views.funnel import funnel, parse_filters
from tests.support.funnel_world import NOW, OWNER, seed_funnel
from tests.support.web import Web

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
def history(web: Web) -> None:
    seed_funnel(web.uow)
    web.clock.set(NOW)


def figures(web: Web, **filters: str):  # type: ignore[no-untyped-def]
    return funnel(web.uow(), parse_filters({**MARCH, **filters}, NOW), NOW).figures


def test_every_figure_of_the_known_history(web: Web, history: None) -> None:
    f = figures(web)
    assert f.counts == {
        "entered": 7,
        "engaged": 5,
        "requalified": 4,
        "accepted": 2,
        "opportunity": 2,
        "won": 1,
    }
    assert [round(f.rate(name) or 0, 3) for name, _ in STAGES] == [0, 0.714, 0.8, 0.5, 1.0, 0.5]
    assert (f.rejected, f.recycled, f.handoffs) == (1, 1, 4)
    assert f.median_to_requalify.total_seconds() == 72 * 3600  # type: ignore[union-attr]
    assert f.median_to_decision.total_seconds() == 2 * 3600  # type: ignore[union-attr]
    assert f.median_sla.total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert (f.sla_met, f.sla_due, f.sla_compliance) == (2, 4, 0.5)


def test_the_filters(web: Web, history: None) -> None:
    assert figures(web, sequence="lost-on-price").counts["entered"] == 6
    timing = figures(web, lost_reason="timing")
    assert (timing.counts["entered"], timing.counts["engaged"], timing.counts["requalified"]) == (
        1,
        1,
        0,
    )
    owned = figures(web, owner=OWNER)
    assert (owned.counts["entered"], owned.counts["accepted"], owned.counts["won"]) == (2, 2, 1)
    february = funnel(
        web.uow(), parse_filters({"from": "2026-02-01", "to": "2026-02-28"}, NOW), NOW
    )
    assert february.figures.counts["entered"] == 1 and february.figures.counts["engaged"] == 1


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


@pytest.mark.parametrize("role", ["marketer", "sales", "admin"])
def test_both_teams_read_the_same_page(web: Web, history: None, role: str) -> None:
    page = text(web.client(role).get("/funnel/?from=2026-03-01&to=2026-03-31"))
    assert '<svg class="bars"' in page
    assert re.search(r'Entered nurture</th> ?<td class="num">7</td>', page)
    assert re.search(r'Won</th> ?<td class="num">1</td> ?<td class="num">50.0%</td>', page)
    assert "50.0%" in page and "2 of 4" in page and "3 d" in page


def test_every_table_downloads_as_csv(web: Web, history: None) -> None:
    client = web.client("marketer")
    stages = client.get("/funnel/stages.csv?from=2026-03-01&to=2026-03-31")
    assert stages.status_code == 200 and stages.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(stages.get_data(as_text=True))))
    assert rows[0] == ["Stage", "Prospects", "Conversion from the stage before"]
    assert rows[1] == ["Entered nurture", "7", ""] and rows[6] == ["Won", "1", "50.0%"]
    timing = client.get("/funnel/timing.csv?from=2026-03-01&to=2026-03-31")
    assert ["SLA compliance", "50.0%"] in list(
        csv.reader(io.StringIO(timing.get_data(as_text=True)))
    )
    assert client.get("/funnel/nothing.csv").status_code == 404


def test_a_csv_cell_cannot_become_a_formula(web: Web, history: None) -> None:
    from engine.services.csv_export import write_csv

    assert write_csv(["a"], [["=HYPERLINK(1)"], ["-2"]]).splitlines()[1:] == [
        "'=HYPERLINK(1)",
        "'-2",
    ]


def test_bad_filters_are_named(web: Web, history: None) -> None:
    client = web.client("marketer")
    bad = client.get("/funnel/?from=2026-13-01")
    assert bad.status_code == 422 and "from: &#39;2026-13-01&#39; is not a date" in text(bad)
    backwards = client.get("/funnel/?from=2026-03-10&to=2026-03-01")
    assert backwards.status_code == 422 and "is after to" in text(backwards)
    assert client.get("/funnel/stages.csv?from=nope").status_code == 422
