"""The sequence list and page through the Flask test client: figures, the flow diagram,
the plain words, status actions for every role, CSRF, and the audit."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from engine.services.audit import list_audit
from tests.support.prospect_world import MPP, ZOFIA, add, happen, seed_world
from tests.support.web import Web


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


@pytest.fixture
def world(web: Web, now):  # type: ignore[no-untyped-def]
    seed_world(web.uow, now)
    zofia = add(web.uow, now, **ZOFIA)
    happen(web.uow, now, zofia, "email.opened", machine=True, reason=MPP)
    return {"zofia": zofia}


def test_the_list_shows_status_version_and_figures(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(web.client("marketer").get("/sequences/"))
    assert "Closed-lost: price" in page and "lost-on-price" in page
    row = re.search(r"Closed-lost: price</strong>.*?</tr>", page)
    assert row is not None
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(0))
    assert cells == ["v1", "1", "0", "0"]  # version, in it now, sent and handoffs in 30 days


def test_the_sequence_page_draws_the_flow_with_live_counts_and_plain_words(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    page = text(web.client("marketer").get("/sequences/lost-on-price"))
    assert 'id="step-value-recap"' in page and 'id="step-engaged"' in page
    assert '<svg class="flow-arcs"' in page and "engaged → case-study" in page
    assert "If they have clicked a link in an email since step 'value-recap'" in page
    # Zofia's first email is queued, she waits at the 4-day wait (step 2)
    waiting = re.search(r'id="step-step-2".*?</li>', page)
    assert waiting is not None and "<b>1</b> here now" in waiting.group(0)
    assert (
        "Prospects enter when their status is “closed lost” and their lost reason is "
        "“price” or “budget”." in page
    )
    assert "status eq" not in page
    assert "They may enter again 30 days after they left" in page


def test_pause_resume_archive_restore_are_explained_audited_and_need_csrf(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    show = text(marketer.get("/sequences/lost-on-price"))
    assert "no step advances and no email goes out" in show
    refused = marketer.post("/sequences/lost-on-price/pause", csrf=False)
    assert refused.status_code == 400
    assert "Paused: nobody enters" not in text(marketer.get("/sequences/lost-on-price"))
    for action, shown in (
        ("pause", "Paused: nobody enters"),
        ("resume", "Resume"),
        ("archive", "Archived: kept for the record"),
        ("restore", "Paused: nobody enters"),
    ):
        done = marketer.post(f"/sequences/lost-on-price/{action}")
        assert done.status_code == 302
        assert shown in text(marketer.get("/sequences/lost-on-price"))
    again = marketer.post("/sequences/lost-on-price/restore", follow_redirects=True)
    assert "is paused: it cannot be restored" in text(again)
    actions = [e.action for e in list_audit(web.uow(), subject="sequence:lost-on-price")]
    assert actions == [
        "sequence.restored",
        "sequence.archived",
        "sequence.resumed",
        "sequence.paused",
    ]
    listing = text(marketer.get("/sequences/"))
    assert listing.index("Closed-lost: anything") < listing.index("Closed-lost: price")


@pytest.mark.parametrize(
    ("role", "code"), [("admin", 200), ("marketer", 200), ("sales", 403), (None, 302)]
)
def test_who_may_open_a_sequence_and_act_on_it(web: Web, world, role, code) -> None:  # type: ignore[no-untyped-def]
    client = web.client(role)
    assert client.get("/sequences/lost-on-price").status_code == code
    acted = client.post("/sequences/lost-on-price/pause")
    assert acted.status_code == (302 if code == 200 else code)


def test_unknown_sequences_and_actions_are_404(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    assert marketer.get("/sequences/nope").status_code == 404
    assert marketer.post("/sequences/nope/pause").status_code == 404
    assert marketer.post("/sequences/lost-on-price/explode").status_code == 404


def test_figures_count_sends_people_and_machines_apart(web: Web, world, now) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select, update

    from engine.store import Message, MessageStatus

    with web.uow() as u:
        message_id = u.session.scalar(select(Message.id))
        u.session.execute(
            update(Message).values(status=MessageStatus.SENT, sent_at=now + timedelta(hours=1))
        )
        u.commit()
    zofia = world["zofia"]
    later = now + timedelta(hours=2)
    happen(web.uow, later, zofia, "email.opened", message_id=message_id)
    happen(web.uow, later, zofia, "email.opened", machine=True, reason=MPP, message_id=message_id)
    happen(
        web.uow,
        later,
        zofia,
        "email.clicked",
        machine=True,
        reason="scanner",
        message_id=message_id,
    )
    page = text(web.client("marketer").get("/sequences/lost-on-price"))
    card = re.search(r'id="step-value-recap".*?</li>', page)
    assert card is not None
    assert "<b>1</b> sent" in card.group(0)
    assert '<b>1</b> opened <span class="muted">(+1 machine)</span>' in card.group(0)
    assert '<b>0</b> clicked <span class="muted">(+1 machine)</span>' in card.group(0)
    listing = text(web.client("marketer").get("/sequences/"))
    row = re.search(r"Closed-lost: price</strong>.*?</tr>", listing)
    assert row is not None and re.findall(r'<td class="num">([^<]*)</td>', row.group(0))[2] == "1"
