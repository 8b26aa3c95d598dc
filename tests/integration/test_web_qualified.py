"""The qualified-lead definition: readable by everyone in words, with who changed what and
when; admins edit it with live validation and see, before publishing, who would be
sales-ready now under the draft (replayed from recorded events)."""

from __future__ import annotations

import re
from datetime import timedelta

from engine.services.scoring import current_scoring
from tests.support.prospect_world import SCORING, ZOFIA, add, happen, seed_world
from tests.support.web import Web


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def world(web: Web, now) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Zofia: a click and a pricing visit (23 points under SCORING); Kim: one click (8)."""
    seed_world(web.uow, now)
    zofia = add(web.uow, now, **ZOFIA)
    kim = add(web.uow, now, email="kim@globex.example", first_name="Kim", status="not_ready")
    happen(web.uow, now, zofia, "email.opened", machine=True, reason="proxy")
    happen(web.uow, now, zofia, "email.clicked", url="https://example.com/a")
    happen(web.uow, now, zofia, "page.visited", path="/pricing")
    happen(web.uow, now, kim, "email.clicked", url="https://example.com/b")
    return zofia, kim


def test_every_role_reads_the_definition_in_words(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    world(web, now)
    for role in ("admin", "marketer", "sales"):
        page = text(web.client(role).get("/qualified/"))
        assert "when their score reaches 60 points" in page, role
        assert "+15 points" in page and "(at most 20 a day)" in page
        assert "half as much after 3 weeks" in page
        assert "handed to sales at once" in page  # meeting.booked is a fast track
        assert "synced from scoring.yaml" in page and "The first definition." in page
    assert "Edit the definition" in text(web.client("admin").get("/qualified/"))
    assert "Edit the definition" not in text(web.client("marketer").get("/qualified/"))


def test_only_admins_edit_and_every_post_needs_csrf(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    world(web, now)
    for role in ("marketer", "sales"):
        client = web.client(role)
        assert client.get("/qualified/edit").status_code == 403
        assert client.post("/qualified/", {"source": SCORING}).status_code == 403
    admin = web.client("admin")
    assert admin.get("/qualified/edit").status_code == 200
    for path in ("/qualified/", "/qualified/check", "/qualified/what-if"):
        assert admin.post(path, {"source": SCORING}, csrf=False).status_code == 400


def test_live_validation_names_the_line(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    world(web, now)
    broken = SCORING.replace("threshold: 60", "threshold: sixty")
    live = text(web.client("admin").post("/qualified/check", {"source": broken}))
    assert "1 problem" in live and "line 2" in live
    assert '"line": 2' in live.replace("&#34;", '"')  # handed to the editor's margin
    changed = SCORING.replace("threshold: 60", "threshold: 20")
    ok = text(web.client("admin").post("/qualified/check", {"source": changed}))
    assert "✓ Valid." in ok and "The threshold went from 60 to 20 points." in ok


def test_the_what_if_lists_who_would_be_sales_ready(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    world(web, now)
    web.clock.set(now + timedelta(hours=1))
    draft = SCORING.replace("threshold: 60", "threshold: 20")
    page = text(web.client("admin").post("/qualified/what-if", {"source": draft}))
    assert "<strong>1</strong> prospect would be sales-ready now" in page
    assert "against 0 under the rules in force: 1 more, 0 no longer" in page
    assert "Zofia Quartermaine" in page and "Kim" not in page.split('id="what-if"')[1]
    lower = SCORING.replace("threshold: 60", "threshold: 5")
    page = text(web.client("admin").post("/qualified/what-if", {"source": lower}))
    assert "<strong>2</strong> prospects would be sales-ready now" in page


def test_publishing_makes_a_version_with_its_author(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    world(web, now)
    admin = web.client("admin")
    bad = admin.post("/qualified/", {"source": "threshold: [1"})
    assert bad.status_code == 422
    changed = SCORING.replace("threshold: 60", "threshold: 70")
    assert admin.post("/qualified/", {"source": changed}).status_code == 302
    with web.uow() as u:
        assert current_scoring(u.session).threshold == 70  # type: ignore[union-attr]
    page = text(web.client("sales").get("/qualified/"))
    assert "when their score reaches 70 points" in page
    assert "admin@example.com" in page and "The threshold went from 60 to 70 points." in page
    again = admin.post("/qualified/", {"source": changed}, follow_redirects=True)
    assert "Nothing to publish" in text(again)
    audit = text(admin.get("/audit?subject=scoring:2"))
    assert "published scoring rules (threshold 70)" in audit
