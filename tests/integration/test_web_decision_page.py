"""The signed decision page a sales rep opens from the alert: public, but its forms carry
a CSRF token like every other form (the signed link alone does not prove the click)."""

from __future__ import annotations

from pathlib import Path

from engine.mail.tokens import TokenSigner
from engine.services.events import record_event
from engine.services.handoffs import get_handoff
from engine.services.prospects import upsert_prospect
from engine.services.scoring import save_scoring
from tests.support.sequences import PRICE, store
from tests.support.web import SECRET, Web

ROOT = Path(__file__).resolve().parents[2]


def handoff_path(web: Web, now) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    scoring = ROOT / "sequences" / "scoring.yaml"
    save_scoring(web.uow(), scoring.read_text(), str(scoring), now)
    store(web.uow, PRICE, now)
    upsert_prospect(
        web.uow(),
        {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "price"},
        now,
    )
    booked = record_event(web.uow(), {"type": "meeting.booked", "email": "ana@example.com"}, now)
    assert booked.handoff_id is not None
    return f"/handoffs/{TokenSigner(SECRET).handoff(booked.handoff_id)}", booked.handoff_id


def test_the_decision_form_needs_its_csrf_token(web: Web, now):
    path, handoff_id = handoff_path(web, now)
    rep = web.client()  # no sign-in: the signed link is the capability
    page = rep.get(path)
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)

    forged = rep.post(path, {"decision": "accept"}, csrf=False)
    assert forged.status_code == 400
    assert get_handoff(web.uow(), handoff_id).status == "open"

    accepted = rep.post(path, {"decision": "accept", "comment": "Calling Tuesday"})
    assert accepted.status_code == 200
    assert "Accepted: the lead is yours." in accepted.get_data(as_text=True)
    assert get_handoff(web.uow(), handoff_id).status == "accepted"
