"""The template pages through the Flask test client: the list, a template's history and
diffs, the editor's save (stale edits, problems at their line, partials), the live preview
(tracking off, its own CSP, nothing recorded), "send a test to me", roles and CSRF."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.services.audit import list_audit
from engine.services.sequence_status import change_status
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_catalog
from engine.services.templates import get_template_version
from engine.store import Event, Message
from tests.support.prospect_world import add
from tests.support.web import EMAILS, Web

ROOT = Path(__file__).resolve().parents[2]
RECAP = "price/value-recap.mjml"
FOOTER = "_partials/footer.mjml"


@pytest.fixture
def shipped(web: Web, now) -> Web:  # type: ignore[no-untyped-def]
    """The shipped templates and sequences, stored as the first run stores them."""
    assert sync_templates(web.uow(), ROOT / "templates", now).problems == []
    report = sync_sequences(web.uow, [ROOT / "sequences"], stored_catalog(web.uow()), now)
    assert report.problems == []
    return web


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def words(response) -> str:  # type: ignore[no-untyped-def]
    """The page's text without its tags."""
    return html.unescape(
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
    )


def nothing_recorded(web: Web) -> bool:
    with web.uow() as uow:
        messages = uow.session.scalar(select(func.count()).select_from(Message))
        events = uow.session.scalar(select(func.count()).select_from(Event))
    return messages == 0 and events == 0


def source(web: Web, path: str = RECAP) -> str:
    return get_template_version(web.uow(), path).source


def save(client, path: str, text_: str, base: int):  # type: ignore[no-untyped-def]
    return client.post(f"/templates/{path}/edit", {"source": text_, "base_version": str(base)})


def test_the_list_shows_emails_partials_and_who_sends_them(shipped: Web) -> None:
    page = words(shipped.client("marketer").get("/templates/"))
    assert "price/value-recap" in page and "_partials/footer.mjml" in page
    assert "Closed-lost: price · value-recap" in page  # the sequence step that sends it
    assert "9 emails" in page  # the footer is in every shipped email
    assert "the templates folder" in page  # who saved it: the sync


def test_a_paused_sequence_is_marked_where_it_sends_a_template(shipped: Web, now) -> None:  # type: ignore[no-untyped-def]
    change_status(shipped.uow(), "lost-on-price", "pause", now, actor="admin@example.com")
    marketer = shipped.client("marketer")
    assert "Closed-lost: price · value-recap paused" in words(marketer.get("/templates/"))
    page = words(marketer.get(f"/templates/{RECAP}"))
    assert "Closed-lost: price (step value-recap ) paused" in page


def test_the_list_has_a_real_empty_state(web: Web) -> None:
    page = text(web.client("admin").get("/templates/"))
    assert "No templates yet" in page and "nurture sequences sync" in page


@pytest.mark.parametrize("role", ["marketer", "admin"])
def test_marketers_and_admins_open_every_template_page(shipped: Web, role: str) -> None:
    client = shipped.client(role)
    for path in (
        "/templates/",
        "/templates/new",
        f"/templates/{RECAP}",
        f"/templates/{RECAP}?version=1",
        f"/templates/{RECAP}/diff?from=1&to=1",
        f"/templates/{RECAP}/edit",
        f"/templates/{RECAP}/preview.html",
        f"/templates/{FOOTER}",
        f"/templates/{FOOTER}/edit",
    ):
        assert client.get(path).status_code == 200, path


def test_sales_reps_reach_no_template_page(shipped: Web) -> None:
    sales = shipped.client("sales")
    for path in ("/templates/", f"/templates/{RECAP}", f"/templates/{RECAP}/edit"):
        assert sales.get(path).status_code == 403, path
    for path in ("edit", "preview", "preview.html", "test"):
        response = sales.post(f"/templates/{RECAP}/{path}", {"source": "x", "draft": "x"})
        assert response.status_code == 403, path
    assert get_template_version(shipped.uow(), RECAP).version == 1


def test_every_post_needs_the_csrf_token(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    original = source(shipped)
    for path in ("edit", "preview", "preview.html", "test"):
        response = marketer.post(
            f"/templates/{RECAP}/{path}",
            {"source": original + "<!-- x -->", "base_version": "1", "draft": original},
            csrf=False,
        )
        assert response.status_code == 400, path
        assert "security token" in response.get_data(as_text=True)
    assert get_template_version(shipped.uow(), RECAP).version == 1


def test_unknown_templates_and_versions_are_no_page(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    assert marketer.get("/templates/price/nope.mjml").status_code == 404
    assert marketer.get("/templates/../etc/passwd").status_code == 404
    assert marketer.get(f"/templates/{RECAP}?version=9").status_code == 404
    assert marketer.get(f"/templates/{RECAP}?version=x").status_code == 400
    assert marketer.get(f"/templates/{RECAP}/diff?from=1&to=7").status_code == 404


def test_a_save_makes_a_version_with_its_history_diff_and_audit_entry(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    editor = text(marketer.get(f"/templates/{RECAP}/edit"))
    assert 'data-editor="html"' in editor and "Save as v2" in editor
    changed = source(shipped).replace("</mj-body>", "<!-- a note from marketing -->\n</mj-body>")

    response = save(marketer, RECAP, changed, 1)

    assert response.status_code == 302
    assert get_template_version(shipped.uow(), RECAP).source == changed
    page = words(marketer.get(response.headers["Location"]))
    assert "Saved price/value-recap.mjml as version 2" in page
    assert "v2 current" in page and EMAILS["marketer"] in page
    diff = text(marketer.get(f"/templates/{RECAP}/diff"))
    assert "Changes from v1 to v2" in diff
    assert "diff-added" in marketer.get(f"/templates/{RECAP}/diff").get_data(as_text=True)
    assert "&lt;!-- a note from marketing --&gt;" in diff
    old = text(marketer.get(f"/templates/{RECAP}?version=1"))
    assert "This is an older version" in old
    entries = list_audit(shipped.uow(), subject=f"template:{RECAP}")
    assert [(e.action, e.actor) for e in entries] == [("template.published", EMAILS["marketer"])]


def test_a_stale_save_is_told_and_overwrites_nothing(shipped: Web) -> None:
    admin, marketer = shipped.client("admin"), shipped.client("marketer")
    theirs = source(shipped) + "\n<!-- theirs -->"
    assert save(admin, RECAP, theirs, 1).status_code == 302

    response = save(marketer, RECAP, source(shipped) + "\n<!-- mine -->", 1)

    assert response.status_code == 409
    page = text(response)
    assert f"{EMAILS['admin']} saved version 2" in page and "Nothing was overwritten" in page
    assert "&lt;!-- mine --&gt;" in page  # the marketer's text is still in the editor
    assert get_template_version(shipped.uow(), RECAP).source == theirs


def test_a_problem_is_refused_at_its_line_and_the_text_kept(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    lines = source(shipped).splitlines()
    lines[9] += " {{ prospect.first_name | no_such_filter }}"

    response = save(marketer, RECAP, "\n".join(lines), 1)

    assert response.status_code == 422
    page = text(response)
    assert "Not saved" in page and "Line 10" in page and "no_such_filter" in page
    assert get_template_version(shipped.uow(), RECAP).version == 1


def test_a_partial_save_republishes_the_emails_that_include_it(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    footer = source(shipped, FOOTER)
    changed = footer.replace("</mj-section>", "</mj-section>\n<!-- v2 -->", 1)
    assert changed != footer

    response = save(marketer, FOOTER, changed, 1)

    assert response.status_code == 302
    page = text(marketer.get(response.headers["Location"]))
    assert "The emails that include it got new versions too" in page and "price/value-recap" in page
    recap = get_template_version(shipped.uow(), RECAP)
    assert recap.version == 2 and recap.includes[FOOTER] == changed


def test_a_partial_that_would_break_its_emails_is_refused_with_the_reason(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    broken = source(shipped, FOOTER) + "\n{% if %}"

    response = save(marketer, FOOTER, broken, 1)

    assert response.status_code == 422
    assert "Not saved" in text(response)
    assert get_template_version(shipped.uow(), FOOTER).version == 1
    assert get_template_version(shipped.uow(), RECAP).version == 1


def preview(client, path: str, draft: str, **fields: str):  # type: ignore[no-untyped-def]
    return client.post(f"/templates/{path}/preview", {"draft": draft, **fields})


def test_the_live_preview_renders_the_draft_without_tracking(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    draft = source(shipped).replace("<mj-text>", "<mj-text>Fresh words from the draft. ", 1)

    facts = text(preview(marketer, RECAP, draft))
    assert "What teams like Northwind got back in year one" in facts  # the step's subject
    assert "sample@example.com" in facts and "sample prospect" in facts
    assert "KB of Gmail's 102 KB" in facts and "Plain-text part" in facts
    assert "Fresh words from the draft." in facts  # the plain-text part follows the draft
    assert 'data-problems="[]"' in facts

    frame = marketer.post(f"/templates/{RECAP}/preview.html", {"draft": draft})
    body = frame.get_data(as_text=True)
    assert frame.status_code == 200 and "Fresh words from the draft." in body
    policy = frame.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script" not in policy and "https:" not in policy
    assert "/t/o/" not in body and "/t/c/" not in body  # no pixel, no rewritten links
    assert "https://nurture.example/u/preview" in body  # an unsubscribe link that refuses
    with_images = marketer.post(f"/templates/{RECAP}/preview.html", {"draft": draft, "images": "1"})
    assert "img-src data: https:" in with_images.headers["Content-Security-Policy"]
    assert nothing_recorded(shipped)


def test_a_draft_that_does_not_compile_shows_its_error_in_the_preview(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    lines = source(shipped).splitlines()
    lines[11] = lines[11] + " {% for %}"
    draft = "\n".join(lines)

    facts = preview(marketer, RECAP, draft).get_data(as_text=True)
    gutter = json.loads(re.search(r'data-problems="([^"]*)"', facts).group(1).replace("&#34;", '"'))
    assert [p["line"] for p in gutter] == [12]
    assert "This does not compile" in facts

    frame = marketer.post(f"/templates/{RECAP}/preview.html", {"draft": draft})
    assert frame.status_code == 200
    assert "This template does not compile" in frame.get_data(as_text=True)
    assert "templates/price/value-recap.mjml:12" in frame.get_data(as_text=True)


def test_the_preview_as_a_real_prospect_and_an_unknown_one(shipped: Web, now) -> None:  # type: ignore[no-untyped-def]
    add(shipped.uow, now, email="zofia@xylo.example", first_name="Zofia", company="Xylo")
    marketer = shipped.client("marketer")
    draft = source(shipped)

    facts = text(preview(marketer, RECAP, draft, prospect="Zofia@Xylo.example"))
    assert "zofia@xylo.example" in facts and "sample prospect" not in facts
    unknown = words(preview(marketer, RECAP, draft, prospect="nobody@example.com"))
    assert "no prospect 'nobody@example.com'" in unknown
    assert nothing_recorded(shipped)


def test_a_partial_previews_inside_an_email_that_includes_it(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    draft = source(shipped, FOOTER).replace("</mj-section>", "</mj-section><!-- d -->", 1)
    facts = words(preview(marketer, FOOTER, draft, email="timing/customer-stories.mjml"))
    assert "Shown inside timing/customer-stories.mjml" in facts
    other = text(preview(marketer, FOOTER, draft, email="price/not-an-email.mjml"))
    assert "nothing to preview" in other


def test_send_a_test_to_me_lands_in_the_outbox_marked_and_untracked(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    draft = source(shipped).replace("<mj-text>", "<mj-text>Test-send words. ", 1)

    response = marketer.post(f"/templates/{RECAP}/test", {"draft": draft})

    assert response.status_code == 200
    page = text(response)
    assert f"to {EMAILS['marketer']}" in page and "outbox" in page
    files = list((shipped.settings.outbox_dir).glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == EMAILS["marketer"]
    assert message["Subject"] == "[TEST] What teams like Northwind got back in year one"
    body = message.get_body(("html",)).get_content()
    assert "Test-send words." in body and "/t/o/" not in body and "/t/c/" not in body
    assert nothing_recorded(shipped)


def test_a_test_of_a_broken_draft_is_not_sent(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    response = marketer.post(f"/templates/{RECAP}/test", {"draft": source(shipped) + "{% if %}"})
    assert response.status_code == 422
    assert "does not render, so it was not sent" in text(response)
    assert not list(shipped.settings.outbox_dir.glob("*.eml"))


def test_the_preview_frame_is_sandboxed_and_hostile_prospect_data_stays_text(
    shipped: Web, now
) -> None:  # type: ignore[no-untyped-def]
    hostile = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    add(shipped.uow, now, email="eve@evil.example", first_name=hostile, company=hostile)
    marketer = shipped.client("marketer")
    editor = marketer.get(f"/templates/{RECAP}/edit").get_data(as_text=True)
    frames = re.findall(r"<iframe[^>]*>", editor)
    assert frames and all(" sandbox " in f and "allow-" not in f for f in frames)

    facts = preview(marketer, RECAP, source(shipped), prospect="eve@evil.example")
    body = facts.get_data(as_text=True)
    assert "eve@evil.example" in body
    assert "<script>alert(2)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(2)" in body  # the subject names the company, as text


def test_a_new_template_starts_from_the_shared_parts_and_is_saved_as_v1(shipped: Web) -> None:
    marketer = shipped.client("marketer")
    form = marketer.get("/templates/new").get_data(as_text=True)
    assert "_partials/footer.mjml" in form  # the skeleton includes the shared footer
    skeleton = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S).group(1))

    taken = marketer.post("/templates/new", {"path": RECAP, "source": skeleton})
    assert taken.status_code == 422 and "already exists" in words(taken)
    bad_path = marketer.post("/templates/new", {"path": "Price/New Email", "source": skeleton})
    assert bad_path.status_code == 422 and "is not a template path" in words(bad_path)
    broken = marketer.post("/templates/new", {"path": "price/new.mjml", "source": "{% if %}"})
    assert broken.status_code == 422 and "Not saved" in words(broken)

    made = marketer.post("/templates/new", {"path": "price/renewal.mjml", "source": skeleton})

    assert made.status_code == 302 and made.headers["Location"].endswith("/renewal.mjml/edit")
    info = get_template_version(shipped.uow(), "price/renewal.mjml")
    assert info.version == 1 and info.created_by == EMAILS["marketer"]
    assert "price/renewal" in words(marketer.get("/templates/"))
    assert shipped.client("sales").get("/templates/new").status_code == 403
