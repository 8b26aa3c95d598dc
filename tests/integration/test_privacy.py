"""GDPR: erasure (art. 17) leaves nothing about the person but a hash, and keeps the counts;
export (art. 15/20) gives every row of every table about them. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, update

from engine.config import Settings
from engine.core.policy import Drop
from engine.exceptions import ConflictError, NotFoundError
from engine.mail.transport import LocalOutboxTransport
from engine.services.accounts import create_user
from engine.services.alerts import plan_alerts
from engine.services.events import record_event
from engine.services.policy_facts import load_policy_inputs
from engine.services.privacy import erase_prospect, erased_record, export_prospect
from engine.services.privacy.coverage import NOT_PERSONAL, PERSONAL_TABLES
from engine.services.privacy.erased import erased_among
from engine.services.prospect_actions import enroll_by_hand
from engine.services.prospects import get_prospect, upsert_prospect
from engine.services.sales_inbox import mark_read
from engine.services.views.inbox import SalesViewer
from engine.store import (
    AuditEntry,
    Base,
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    InboundKind,
    InboundMessage,
    InboundStatus,
    IncidentKind,
    Message,
    MessageIncident,
    MessageStatus,
    Prospect,
    ScoreEntry,
    Suppression,
    SuppressionReason,
    TrackingHit,
)
from engine.store.suppressions import email_hash
from tests.support.prospect_world import MPP, ZOFIA, ZOFIA_STRINGS, add, happen, seed_world

PERSON_TABLES = (Enrollment, Message, Event, ScoreEntry, Handoff)

DPO = "dpo@example.com"  # who answers the requests


def deliver(uow, message_id: int, now, email: str) -> None:  # type: ignore[no-untyped-def]
    """What the send path writes about a sent message, personal parts included."""
    with uow() as u:
        u.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(
                status=MessageStatus.SENT,
                sent_at=now,
                to_email=email,
                smtp_message_id=f"<m{message_id}@nurture.example>",
                links=[f"https://shop.example/offer?who={email}"],
                last_error=f"451 4.7.1 <{email}>: try again later",
            )
        )
        u.session.add(
            MessageIncident(
                message_id=message_id,
                kind=IncidentKind.RETRIED,
                detail=f"451 4.7.1 <{email}>: greylisted",
                created_at=now,
            )
        )
        u.commit()


def first_message(uow, prospect_id: int) -> int:  # type: ignore[no-untyped-def]
    with uow() as u:
        return u.session.scalar(
            select(Message.id).where(Message.prospect_id == prospect_id).order_by(Message.id)
        )


def zofia_with_a_history(uow, now) -> int:  # type: ignore[no-untyped-def]
    """Zofia: enrolled, emailed, opened (by a proxy), clicked, replied, booked a meeting
    (a handoff, still open), with the address quoted in SMTP errors and event data."""
    seed_world(uow, now)
    zofia = add(uow, now, **ZOFIA)
    message = first_message(uow, zofia)
    deliver(uow, message, now, ZOFIA["email"])
    later = now + timedelta(hours=2)
    happen(uow, later, zofia, "email.opened", machine=True, reason=MPP, message_id=message)
    happen(
        uow,
        later,
        zofia,
        "email.clicked",
        message_id=message,
        url=f"https://shop.example/offer?who={ZOFIA['email']}",
        step="value-recap",
    )
    happen(
        uow,
        later,
        zofia,
        "email.replied",
        key="hubspot-zofia-reply-1",
        text="Hi, Zofia Quartermaine here, call me on +48 600 700 800",
    )
    enroll_by_hand(  # a marketer's note about her, kept in the enrollment and the audit log
        uow(),
        zofia,
        "urgent-lost",
        later,
        actor="mia@example.com",
        override="Zofia Quartermaine of Xylophonics asked at the fair",
    )
    happen(uow, later, zofia, "meeting.booked", title="Xylophonics x Nurture")
    with uow() as u:  # her reply, as the inbound mail service keeps it
        u.session.add(
            InboundMessage(
                dedupe_key="sha256:" + "0" * 64,
                header_message_id="<zofia-reply@xylophonics.example>",
                transport="imap",
                received_at=later,
                from_address=ZOFIA["email"],
                subject="Re: Zofia Quartermaine, your offer",
                size=80,
                raw=f"From: {ZOFIA['email']}\r\n\r\nZofia Quartermaine here".encode(),
                kind=InboundKind.REPLY,
                status=InboundStatus.PROCESSED,
                reason=f"written by a person ({ZOFIA['email']})",
                details={"excerpt": "Zofia Quartermaine here"},
                message_id=message,
                prospect_id=zofia,
            )
        )
        u.session.add(  # an open of her email, answered and not judged yet
            TrackingHit(
                kind="open",
                message_id=message,
                link_index=None,
                received_at=later,
                user_agent="Mozilla/5.0 (Zofia's laptop)",
                ip="203.0.113.7",
                method="GET",
            )
        )
        u.commit()
    rep = create_user(uow(), "rep@example.com", "Rep", "sales", None, later)
    with uow() as u:  # her lead, opened by its rep in the sales inbox
        handoff_id = u.session.scalar(select(Handoff.id).where(Handoff.prospect_id == zofia))
    mark_read(uow(), handoff_id, SalesViewer(rep, "rep@example.com"), later)
    refused_import_row(uow, later)
    return zofia


def refused_import_row(uow, now) -> None:  # type: ignore[no-untyped-def]
    """A CSV import that refused a row with Zofia's address (its values are hers)."""
    from engine.services.imports import run_import, start_import, upload_import

    data = f"email,first_name,status\n{ZOFIA['email']},Zofia,Closed Lost!\n".encode()
    view = upload_import(uow(), "crm.csv", data, "mia@example.com", now)
    start_import(uow(), view.id, "mia@example.com", now)
    assert run_import(uow, view.id, lambda: now).problems == 1


def everything_in_the_database(uow) -> str:  # type: ignore[no-untyped-def]
    """Every value of every row of every table, lowercased, as one text to search."""
    parts = []
    with uow() as u:
        for table in Base.metadata.sorted_tables:
            for row in u.session.execute(select(table)).all():
                parts.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(parts).lower()


def counts(uow, prospect_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with uow() as u:
        return {
            model.__tablename__: u.session.scalar(
                select(func.count()).select_from(model).where(model.prospect_id == prospect_id)
            )
            for model in PERSON_TABLES
        }


def outbox_email(folder: Path, to: str, subject: str, body: str, **headers: str) -> None:
    message = EmailMessage()
    message["From"] = "nurture@example.com"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", f"<{subject.replace(' ', '-')}@x>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    LocalOutboxTransport(folder).send("nurture@example.com", to, message.as_bytes())


# --- erasure ------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_the_person_and_keeps_every_count(uow_factory, now, tmp_path):  # type: ignore[no-untyped-def]
    zofia = zofia_with_a_history(uow_factory, now)
    other = add(
        uow_factory,
        now,
        email="kept@example.com",
        first_name="Kept",
        status="closed_lost",
        lost_reason="price",
    )
    happen(uow_factory, now, other, "page.visited", path="/pricing/kept")
    before = counts(uow_factory, zofia)
    assert before["handoffs"] == 1 and before["events"] == 4 and before["score_entries"] >= 2
    assert all(s in everything_in_the_database(uow_factory) for s in ZOFIA_STRINGS)
    outbox = tmp_path / "outbox"
    outbox_email(
        outbox, ZOFIA["email"], "Value recap", "Hi Zofia", message_id="<m1@nurture.example>"
    )
    outbox_email(
        outbox,
        "rep@example.com",
        "Re-engaged lead",
        f"{ZOFIA['email']} is back",
        X_Nurture_Handoff="1",
    )
    outbox_email(outbox, "kept@example.com", "Hello Kept", "Nothing about anyone else")

    report = erase_prospect(
        uow_factory(), zofia, now + timedelta(days=1), actor=DPO, outbox_dir=outbox
    )

    assert not report.already and report.outbox_files == 2
    assert report.rows["prospects"] == 1 and report.rows["events"] == 4
    left = everything_in_the_database(uow_factory)
    assert [s for s in ZOFIA_STRINGS if s in left] == []
    assert counts(uow_factory, zofia) == before  # the statistics stay true
    remaining = [p.read_bytes() for p in outbox.iterdir()]
    assert len(remaining) == 1 and b"Hello Kept" in remaining[0]
    assert "kept@example.com" in left and "/pricing/kept" in left  # nobody else touched

    with uow_factory() as u:
        prospect = u.session.get(Prospect, zofia)
        assert (prospect.email, prospect.status) == (f"erased-{zofia}@erased.invalid", "erased")
        assert prospect.erased_at == now + timedelta(days=1) and prospect.attributes == {}
        suppression = u.session.scalars(select(Suppression)).one()
        assert (suppression.email, suppression.reason) == (None, SuppressionReason.ERASED)
        assert suppression.email_hash == email_hash(" ZOFIA.Quartermaine@xylophonics.example")
        handoff = u.session.scalars(select(Handoff)).one()
        assert handoff.status == HandoffStatus.WITHDRAWN
        assert handoff.context["erased"] is True and "prospect" not in handoff.context
        assert set(handoff.context) >= {"reason", "score", "nurture"}
        reply = u.session.scalars(select(Event).where(Event.type == "email.replied")).one()
        assert reply.data == {} and reply.idempotency_key.startswith("erased:")
        click = u.session.scalars(select(Event).where(Event.type == "email.clicked")).one()
        assert click.data == {"step": "value-recap"}
        assert (
            u.session.scalar(select(Message.to_email).where(Message.prospect_id == zofia)) is None
        )
        audit = u.session.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.summary)
            .where(AuditEntry.subject == f"prospect:{zofia}")
            .order_by(AuditEntry.id)
        ).all()
    assert [(a.action, a.actor) for a in audit] == [
        ("prospect.enrolled_by_hand", "mia@example.com"),
        ("prospect.erased", DPO),
    ]
    assert audit[1].summary == f"Erased prospect {zofia} at the person's request (GDPR art. 17)"


def test_an_erased_address_is_never_mailed_created_or_scored_again(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    zofia = add(uow_factory, now, **ZOFIA)
    message = first_message(uow_factory, zofia)
    with uow_factory() as u:  # a worker had claimed it just before the erasure
        u.session.execute(
            update(Message)
            .where(Message.id == message)
            .values(status=MessageStatus.SENDING, claim_token="w1")
        )
        u.commit()
    assert counts(uow_factory, zofia)["enrollments"] == 1

    erase_prospect(uow_factory(), zofia, now, actor=DPO)

    with uow_factory() as u:
        enrollment = u.session.scalars(select(Enrollment)).one()
        assert (enrollment.status, enrollment.exit_reason) == (
            EnrollmentStatus.EXITED,
            "erased at the person's request",
        )
    item = load_policy_inputs(uow_factory(), [message], Settings(), now).items[0]
    decision = load_policy_inputs(uow_factory(), [message], Settings(), now).decide(item, now)
    assert isinstance(decision, Drop) and decision.status == "suppressed"

    for address in (ZOFIA["email"], "  Zofia.QUARTERMAINE@xylophonics.example "):
        with pytest.raises(ConflictError, match=r"was erased on .* \(GDPR art. 17\)"):
            upsert_prospect(uow_factory(), {"email": address, "status": "closed_lost"}, now)
    with pytest.raises(ConflictError, match="placeholder of an erased prospect"):
        upsert_prospect(uow_factory(), {"email": f"erased-{zofia}@erased.invalid"}, now)
    with pytest.raises(NotFoundError, match="erased"):
        record_event(uow_factory(), {"type": "email.clicked", "prospect_id": zofia}, now)
    with pytest.raises(NotFoundError, match="erased"):
        get_prospect(uow_factory(), zofia)
    with pytest.raises(NotFoundError, match="nothing about them is kept"):
        export_prospect(uow_factory(), zofia, now, actor=DPO)
    with uow_factory() as u:
        assert erased_among(u.session, [ZOFIA["email"], "new@example.com"]) == {ZOFIA["email"]}
        assert u.session.scalar(select(func.count()).select_from(Prospect)) == 1
    assert erased_record(uow_factory(), ZOFIA["email"].upper()) == now
    assert erased_record(uow_factory(), "new@example.com") is None


def test_erasing_twice_changes_nothing_the_second_time(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    zofia = add(uow_factory, now, **ZOFIA)
    erase_prospect(uow_factory(), zofia, now, actor=DPO)
    again = erase_prospect(uow_factory(), zofia, now + timedelta(days=3), actor=DPO)
    assert again.already and again.erased_at == now and again.rows == {}
    with pytest.raises(NotFoundError):
        erase_prospect(uow_factory(), 999_999, now, actor=DPO)


def test_no_alert_goes_out_about_an_erased_persons_handoff(uow_factory, now):  # type: ignore[no-untyped-def]
    zofia = zofia_with_a_history(uow_factory, now)
    settings = Settings().with_overrides(webhook_url="http://127.0.0.1:9/hook")
    erase_prospect(uow_factory(), zofia, now, actor=DPO)
    assert plan_alerts(uow_factory(), now + timedelta(hours=1), settings) == []


def test_a_suppression_made_before_the_erasure_becomes_hash_only(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    zofia = add(uow_factory, now, **ZOFIA)
    happen(uow_factory, now, zofia, "email.unsubscribed")  # the event suppresses the address
    with uow_factory() as u:
        before = u.session.execute(select(Suppression.email, Suppression.reason)).all()
    assert before == [(ZOFIA["email"], SuppressionReason.UNSUBSCRIBED)]
    erase_prospect(uow_factory(), zofia, now + timedelta(days=1), actor=DPO)
    with uow_factory() as u:
        rows = u.session.execute(
            select(Suppression.email, Suppression.reason, Suppression.note)
        ).all()
    assert rows == [(None, SuppressionReason.ERASED, None)]


# --- export -------------------------------------------------------------------------------


def test_the_export_holds_every_row_and_column_of_every_table_about_the_person(uow_factory, now):  # type: ignore[no-untyped-def]
    zofia = zofia_with_a_history(uow_factory, now)
    with uow_factory() as u:
        u.session.add(
            Suppression(
                email=ZOFIA["email"],
                reason=SuppressionReason.MANUAL,
                note="asked by phone",
                created_at=now,
            )
        )
        u.commit()
    add(
        uow_factory,
        now,
        email="someone.else@example.com",
        status="closed_lost",
        lost_reason="price",
    )

    document = export_prospect(uow_factory(), zofia, now + timedelta(days=1), actor=DPO)

    json.dumps(document)  # plain JSON, nothing to post-process
    assert document["format"] == "nurture-personal-data/1"
    assert document["subject"] == {"prospect_id": zofia, "email": ZOFIA["email"]}
    with uow_factory() as u:
        for table in PERSONAL_TABLES:
            columns = {c.key for c in inspect(table.model).column_attrs}
            section = document[table.section]
            rows = [section] if isinstance(section, dict) else section
            expected = u.session.scalar(
                select(func.count()).select_from(table.model).where(table.rows(_person(zofia)))
            )
            assert expected >= 1, f"the scenario leaves {table.table_name} empty: not tested"
            assert len(rows) == expected, table.table_name
            assert all(set(row) == columns for row in rows), table.table_name
    assert document["prospect"]["attributes"]["phone"] == "+48 600 700 800"
    assert document["prospect"]["deal_size"] == "48000.00"
    assert document["suppression"]["note"] == "asked by phone"
    reply = next(e for e in document["events"] if e["type"] == "email.replied")
    assert "Zofia Quartermaine here" in reply["data"]["text"]
    assert document["handoffs"][0]["context"]["prospect"]["name"] == "Zofia Quartermaine"
    assert document["message_incidents"][0]["detail"].endswith("greylisted")
    assert "lost-on-price" in [s["key"] for s in document["sequences"]]
    assert document["score"]["half_life"] == "21d"
    assert "someone.else" not in json.dumps(document)


def _person(prospect_id: int):  # type: ignore[no-untyped-def]
    from engine.services.privacy.coverage import Person

    return Person(prospect_id, ZOFIA["email"])


# --- the coverage itself ------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_table_and_column_has_a_verdict(database_url) -> None:  # type: ignore[no-untyped-def]
    covered = {t.table_name for t in PERSONAL_TABLES}
    assert covered | set(NOT_PERSONAL) == set(Base.metadata.tables), (
        "a table is neither in PERSONAL_TABLES nor in NOT_PERSONAL"
    )
    assert not covered & set(NOT_PERSONAL)
    for table in PERSONAL_TABLES:
        columns = {c.key for c in inspect(table.model).column_attrs}
        assert table.keep.isdisjoint(table.scrub), table.table_name
        unjudged = columns - table.keep - set(table.scrub)
        assert not unjudged, f"{table.table_name}: columns without a verdict: {unjudged}"
    # Whatever points at a person's rows is about the person.
    personal = {"prospects", "messages", "events", "handoffs", "enrollments"}
    for name, table in Base.metadata.tables.items():
        if any(fk.column.table.name in personal for fk in table.foreign_keys):
            assert name in covered, f"{name} refers to a person's rows but is not covered"
