"""The simulator in the browser through the Flask test client: a stored sequence or the
editor's draft, a real prospect or typed fields, scripted events; the timeline is the
core's, emails are previewed without tracking; bad input is named, nothing is written."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from engine.store import Event, Message
from tests.support.prospect_world import ZOFIA, add, seed_world
from tests.support.sequences import PRICE, store
from tests.support.split_world import SPLIT
from tests.support.web import Web

FIELDS = "first_name: Dana\nstatus: closed_lost\nlost_reason: price\ntimezone: Europe/Berlin\n"
CLICKS = "- {after: value-recap, delay: 2h, event: email.clicked, data: {url: https://x.example}}\n"


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def counts(web: Web) -> tuple[int, int]:
    with web.uow() as u:
        return (
            u.session.scalar(select(func.count()).select_from(Message)) or 0,
            u.session.scalar(select(func.count()).select_from(Event)) or 0,
        )


@pytest.fixture
def world(web: Web, now):  # type: ignore[no-untyped-def]
    seed_world(web.uow, now)
    return {"zofia": add(web.uow, now, **ZOFIA)}


def run(client, **form):  # type: ignore[no-untyped-def]
    data = {"sequence": "lost-on-price", "fields": FIELDS, "events": "", "days": "30"} | form
    return client.post("/simulator/", data)


def test_the_form_offers_every_sequence_with_an_example(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(web.client("marketer").get("/simulator/?sequence=lost-on-price"))
    assert '<option value="lost-on-price" selected>Closed-lost: price</option>' in page
    assert "status: closed_lost" in page and "after: value-recap" in page


def test_a_click_takes_the_case_study_branch_and_each_email_has_a_preview(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    before = counts(web)
    page = text(run(web.client("marketer"), events=CLICKS))
    assert "version 1" in page and "enters" in page
    assert "They enter: their status is “closed lost” and their lost reason is" in page
    assert "send price/value-recap (#1)" in page
    assert "email.clicked since value-recap -> case-study" in page  # the branch and why
    assert page.count('class="preview-frame" sandbox') == 3  # value-recap, case-study, nudge
    assert "Outcome: completed" in page
    assert counts(web) == before  # nothing written


def test_an_email_due_on_a_saturday_is_held_for_the_send_window(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(run(web.client("marketer"), start="2026-03-07T10:00"))
    assert "Held for the send window: goes out Mon 09 Mar 08:00 UTC." in page  # 09:00 Berlin


def test_no_click_takes_the_else_branch(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(run(web.client("marketer")))
    assert "no condition held -> nudge" in page


def test_a_prospect_who_does_not_match_is_told_why(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(run(web.client("marketer"), fields="status: lead\n"))
    assert "They would not enter: the rule is that their status is “closed lost”" in page


def test_a_real_prospect_by_email(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(run(web.client("marketer"), prospect=ZOFIA["email"], fields=""))
    assert f"For {ZOFIA['email']} (as stored now)" in page
    assert "prospect=zofia.quartermaine" in page  # the previews render for her


def test_the_email_preview_is_sandboxed_and_never_tracks(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    before = counts(web)
    preview = marketer.get(
        "/simulator/email.html?template=price/value-recap&subject=Hi+{{+prospect.first_name+}}"
        "&fields=first_name:+Dana"
    )
    assert preview.status_code == 200
    assert "default-src 'none'" in preview.headers["Content-Security-Policy"]
    body = preview.get_data(as_text=True)
    assert "Dana" in body and "/t/o/" not in body and "/t/c/" not in body
    bad = marketer.get("/simulator/email.html?template=../etc&subject=x")
    assert bad.status_code == 200 and "No preview" in bad.get_data(as_text=True)
    assert counts(web) == before


def test_the_editors_draft_is_simulated_unsaved(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    draft = PRICE.replace('subject: "Budget check-in"', 'subject: "Draft subject"')
    page = text(marketer.post("/simulator/draft", {"source": draft, "sequence": "lost-on-price"}))
    assert "your unsaved draft" in page and "Draft subject" in page
    again = text(
        marketer.post(
            "/simulator/",
            {"draft": draft, "sequence": "lost-on-price", "fields": FIELDS, "days": "30"},
        )
    )
    assert "your unsaved draft" in again
    broken = marketer.post("/simulator/draft", {"source": "key: [", "sequence": "lost-on-price"})
    assert broken.status_code == 422 and "the draft is not valid yet" in text(broken)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"sequence": ""}, "choose a sequence"),
        ({"days": "0"}, "between 1 and 365"),
        ({"days": "soon"}, "a whole number of days"),
        ({"fields": "status: [unclosed"}, "not YAML or JSON"),
        ({"fields": "stauts: closed_lost"}, "unknown field 'stauts'"),
        ({"events": "- {at: 3d, event: email.clickd}"}, "event 1: unknown event 'email.clickd'"),
        ({"events": "- {event: page.visited}"}, "give exactly one of 'at'"),
        ({"prospect": "nobody@example.com"}, "nobody has the address"),
        ({"start": "next tuesday"}, "a date and time like"),
    ],
)
def test_bad_input_is_named_next_to_its_field(web: Web, world, form, message) -> None:  # type: ignore[no-untyped-def]
    response = run(web.client("marketer"), **form)
    assert response.status_code == 422
    assert message in text(response)


@pytest.mark.parametrize(("role", "code"), [("admin", 200), ("sales", 403), (None, 302)])
def test_who_may_simulate(web: Web, world, role, code) -> None:  # type: ignore[no-untyped-def]
    client = web.client(role)
    assert client.get("/simulator/").status_code == code
    assert run(client).status_code == code
    assert client.get("/simulator/email.html?template=price/value-recap").status_code == code


def test_simulating_needs_the_token(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    assert (
        marketer.post("/simulator/", {"sequence": "lost-on-price"}, csrf=False).status_code == 400
    )
    assert marketer.post("/simulator/draft", {"source": PRICE}, csrf=False).status_code == 400


def test_typed_fields_are_shown_as_text(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    hostile = (
        'first_name: "<script>alert(1)</script>"\ncompany: "\\"><img src=x onerror=alert(1)>"\n'
    )
    body = run(web.client("marketer"), fields=hostile + FIELDS.split("\n", 1)[1]).get_data(
        as_text=True
    )
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body
    assert not re.search(r"<img[^>]*onerror=", body)


# --- forcing a split's variant --------------------------------------------------------------

SPLIT_FIELDS = "first_name: Dana\nstatus: disqualified\n"


def test_each_split_step_has_a_labelled_field_that_forces_its_variant(web: Web, world, now) -> None:  # type: ignore[no-untyped-def]
    store(web.uow, SPLIT, now)
    marketer = web.client("marketer")
    form = text(marketer.get("/simulator/?sequence=offer-test"))
    assert '<label for="variant-offer">Variant at split <code>offer</code></label>' in form
    assert '<option value="calculator">calculator</option>' in form
    assert "Drawn as in production (by the prospect's id)" in form
    swapped = text(marketer.get("/simulator/splits?sequence=offer-test"))  # htmx, on change
    assert 'id="split-fields"' in swapped and 'name="variant-offer"' in swapped
    assert "variant-" not in text(marketer.get("/simulator/splits?sequence=lost-on-price"))

    for variant, subject in (
        ("calculator", "Is budget still the blocker?"),
        ("case-study", "How Northwind did it"),
    ):
        page = text(
            run(
                marketer,
                sequence="offer-test",
                fields=SPLIT_FIELDS,
                **{"variant-offer": variant},
            )
        )
        assert f"variant '{variant}' is chosen for this simulation" in page
        assert f"Preview: “{subject}”" in page
        assert f'<option value="{variant}" selected>' in page  # the choice is kept


def test_a_variant_the_split_does_not_have_is_named(web: Web, world, now) -> None:  # type: ignore[no-untyped-def]
    store(web.uow, SPLIT, now)
    page = run(
        web.client("marketer"),
        sequence="offer-test",
        fields=SPLIT_FIELDS,
        **{"variant-offer": "calculatr", "variant-nope": "x"},
    )
    assert page.status_code == 422
    shown = text(page)
    assert "split 'offer' has no variant 'calculatr'" in shown or "'nope' is no split step" in shown
