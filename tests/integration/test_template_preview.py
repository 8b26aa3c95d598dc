"""Previews and test emails: the real renderer and transport, tracking off, nothing recorded."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.config import Settings
from engine.exceptions import NotFoundError
from engine.mail.render import Renderer
from engine.mail.transport import LocalOutboxTransport, SmtpTransport
from engine.services.accounts import create_user
from engine.services.prospects import upsert_prospect
from engine.services.sequences import sync_sequences
from engine.services.template_preview import (
    GMAIL_CLIP_BYTES,
    PreviewRequest,
    PreviewSendError,
    preview_template,
    send_test_email,
)
from engine.services.template_sync import sync_templates
from engine.services.template_versions import (
    TemplateProblem,
    TemplateValidationError,
    stored_catalog,
)
from engine.services.templates import get_template_version
from engine.store import Event, Message, UnitOfWork

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(
    secret_key="t",
    base_url="https://nurture.example",
    company_name="Acme Analytics",
    company_url="https://acme.example",
    postal_address="Acme Analytics, 1 Main Street, Springfield",
)
Uow = Callable[[], UnitOfWork]


@pytest.fixture
def stored(uow_factory: Uow, now: datetime) -> Uow:
    assert sync_templates(uow_factory(), ROOT / "templates", now).problems == []
    report = sync_sequences(uow_factory, [ROOT / "sequences"], stored_catalog(uow_factory()), now)
    assert report.problems == []
    return uow_factory


def nothing_recorded(uow_factory: Uow) -> bool:
    with uow_factory() as uow:
        messages = uow.session.scalar(select(func.count()).select_from(Message))
        events = uow.session.scalar(select(func.count()).select_from(Event))
        return messages == 0 and events == 0


def test_a_preview_for_a_sample_prospect_uses_the_step_that_sends_the_template(
    stored: Uow,
) -> None:
    preview = preview_template(stored(), SETTINGS, PreviewRequest("price/value-recap"))

    assert preview.ok and preview.problems == []
    assert preview.sample and preview.recipient == "sample@example.com"
    assert preview.subject == "What teams like Northwind got back in year one"
    assert preview.preheader == "Three numbers customers measured themselves, not a discount."
    assert "Hi Ana," in preview.text
    assert preview.html_bytes == len(preview.html.encode()) and not preview.clipped
    assert preview.html_bytes < GMAIL_CLIP_BYTES
    # Tracking is off: the original links, no open pixel, no honeypot, and an unsubscribe
    # link the unsubscribe page refuses.
    assert "https://example.com/customers/results" in preview.html
    assert "/t/" not in preview.html and "/t/" not in preview.text
    assert "https://nurture.example/u/preview" in preview.text
    assert nothing_recorded(stored)


def test_a_preview_for_a_real_prospect_and_a_typed_subject(stored: Uow, now: datetime) -> None:
    create_user(stored(), "sam@acme.example", "Sam Carter", "sales", None, now)
    upsert_prospect(
        stored(),
        {
            "email": "zoe@initech.example",
            "first_name": "Zoë",
            "company": "Initech",
            "owner": "sam@acme.example",
        },
        now,
    )

    preview = preview_template(
        stored(),
        SETTINGS,
        PreviewRequest(
            "timing/ready-to-revisit",
            subject="{{ prospect.first_name }}, still on hold?",
            preheader="",
            prospect_email="Zoe@Initech.example",
        ),
    )

    assert preview.ok and not preview.sample
    assert preview.recipient == "zoe@initech.example"
    assert preview.subject == "Zoë, still on hold?" and preview.preheader == ""
    assert "a 20-minute call with Sam Carter:" in preview.text
    with pytest.raises(NotFoundError):
        preview_template(stored(), SETTINGS, PreviewRequest("price/value-recap", prospect_id=999))


def test_a_draft_is_previewed_over_the_stored_templates(stored: Uow) -> None:
    footer = get_template_version(stored(), "_partials/footer.mjml").source
    draft = footer.replace("Not useful?", "Had enough?")

    preview = preview_template(
        stored(),
        SETTINGS,
        PreviewRequest("price/case-study", drafts={"_partials/footer.mjml": draft}),
    )

    assert preview.ok and "Had enough?" in preview.text
    assert get_template_version(stored(), "_partials/footer.mjml").source == footer  # unsaved


def test_a_draft_that_does_not_compile_shows_its_problem_at_its_line(stored: Uow) -> None:
    source = get_template_version(stored(), "price/value-recap.mjml").source
    lines = source.splitlines()
    lines[9] = lines[9] + " {{ prospect.compnay }}"

    preview = preview_template(
        stored(),
        SETTINGS,
        PreviewRequest("price/value-recap", drafts={"price/value-recap.mjml": "\n".join(lines)}),
    )

    assert not preview.ok and preview.html == ""
    assert preview.problems == [
        TemplateProblem(
            "templates/price/value-recap.mjml",
            10,
            "unknown field 'prospect.compnay' (did you mean 'prospect.company'?); prospect has "
            "attributes, company, country, created_at, deal_size, email, first_name, "
            "last_name, lost_at, lost_reason, owner, source, status, status_changed_at, "
            "timezone, title",
        )
    ]


def test_a_big_email_is_flagged_as_clipped_by_gmail(stored: Uow) -> None:
    source = get_template_version(stored(), "price/value-recap.mjml").source
    filler = "<mj-text>" + "Lorem ipsum dolor sit amet. " * 40 + "</mj-text>\n"
    big = source.replace("<mj-text>Best,</mj-text>", filler * 120 + "<mj-text>Best,</mj-text>")

    preview = preview_template(
        stored(),
        SETTINGS,
        PreviewRequest("price/value-recap", drafts={"price/value-recap.mjml": big}),
    )

    assert preview.ok and preview.clipped and preview.html_bytes > GMAIL_CLIP_BYTES


def test_send_a_test_to_me_through_a_real_smtp_server(stored: Uow, smtp_server, now) -> None:  # type: ignore[no-untyped-def]
    transport = SmtpTransport.from_url(smtp_server.url)
    try:
        sent = send_test_email(
            stored(),
            SETTINGS,
            Renderer(),
            transport,
            PreviewRequest("price/budget-check-in"),
            "marketer@acme.example",
            now,
        )
    finally:
        transport.close()

    [mail] = [m.message for m in smtp_server.accepted()]
    assert str(mail["To"]) == "marketer@acme.example"
    assert str(mail["Subject"]) == sent.subject == "[TEST] Ana, is budget still the blocker?"
    assert str(mail["Message-ID"]) == sent.message_id_header
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "/t/" not in html and "/t/" not in text  # no tracked link, pixel or honeypot
    assert "https://example.com/pricing" in html
    assert nothing_recorded(stored)


def test_a_test_email_lands_in_the_outbox_without_smtp(stored: Uow, tmp_path: Path, now) -> None:  # type: ignore[no-untyped-def]
    outbox = tmp_path / "outbox"
    sent = send_test_email(
        stored(),
        SETTINGS,
        Renderer(),
        LocalOutboxTransport(outbox),
        PreviewRequest("went-dark/demo-recap"),
        "marketer@acme.example",
        now,
    )

    [file] = list(outbox.glob("*.eml"))
    mail = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
    assert str(mail["Subject"]) == sent.subject == "[TEST] Your demo recap, ready to forward"
    assert "/t/" not in file.read_text()
    assert nothing_recorded(stored)


def test_a_test_email_that_cannot_go_says_why(stored: Uow, smtp_server, now) -> None:  # type: ignore[no-untyped-def]
    smtp_server.refuse_recipient("nobody@acme.example", 550)
    transport = SmtpTransport.from_url(smtp_server.url)
    broken = get_template_version(stored(), "price/value-recap.mjml").source.replace(
        "{{ prospect.first_name", "{{ prospect.frist_name", 1
    )
    try:
        with pytest.raises(PreviewSendError, match="did not take the test email"):
            send_test_email(
                stored(),
                SETTINGS,
                Renderer(),
                transport,
                PreviewRequest("price/value-recap"),
                "nobody@acme.example",
                now,
            )
        with pytest.raises(TemplateValidationError) as caught:
            send_test_email(
                stored(),
                SETTINGS,
                Renderer(),
                transport,
                PreviewRequest("price/value-recap", drafts={"price/value-recap.mjml": broken}),
                "marketer@acme.example",
                now,
            )
    finally:
        transport.close()
    assert caught.value.template_problems[0].file == "templates/price/value-recap.mjml"
    assert smtp_server.accepted() == []
    assert nothing_recorded(stored)
