"""An email of a prospect's timeline, rendered for them the way it is rendered today.

The outbox row keeps what to send (template, subject source, step), not the rendered
bytes; the preview renders the message's template for this prospect with the real
renderer, with no tracking at all (no pixel, links as written), so looking at it records
nothing. It says so when the template no longer renders.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from jinja2.exceptions import TemplateError as JinjaError
from sqlalchemy import select

from engine.config import Settings
from engine.exceptions import NotFoundError
from engine.mail.catalog import TemplateError
from engine.mail.render import Renderer, StoredTemplate
from engine.services.compose import email_step, render_context, sender_of
from engine.services.loading import prospect_facts, spec_by_id
from engine.services.template_versions import message_template
from engine.services.views.prospect_detail import load_prospect, person_name
from engine.store import Enrollment, Message, Sequence, UnitOfWork

__all__ = ["EmailPreview", "preview_message"]


@dataclass(frozen=True)
class EmailPreview:
    message_id: int
    prospect_id: int
    prospect_name: str  # "first last", or the address
    sequence_key: str
    step_id: str
    template_key: str
    status: str
    sent_at: datetime | None
    subject: str
    html: str
    text: str
    error: str | None = None  # why it does not render today


def preview_message(
    uow: UnitOfWork,
    renderer: Renderer,
    settings: Settings,
    prospect_id: int,
    message_id: int,
    *,
    owner_scope: str | None = None,
) -> EmailPreview:
    """The message rendered for its prospect; NotFoundError unless it is theirs."""
    with uow:
        session = uow.session
        prospect = load_prospect(session, prospect_id, owner_scope)
        row = session.execute(
            select(Message, Sequence.key)
            .join(Enrollment, Enrollment.id == Message.enrollment_id)
            .join(Sequence, Sequence.id == Enrollment.sequence_id)
            .where(Message.id == message_id, Message.prospect_id == prospect_id)
        ).first()
        if row is None:
            raise NotFoundError(f"prospect {prospect_id} has no email {message_id}")
        message, key = row
        spec = spec_by_id(session, message.sequence_version_id)
        facts = prospect_facts(prospect)
        try:  # the version the message names, as the worker renders it
            template: StoredTemplate | TemplateError = message_template(
                session, message.template_version_id, message.template_key
            )
        except TemplateError as exc:
            template = exc
    step = email_step(spec, message.step_id)
    context = render_context(facts, sender_of(spec, step, settings), settings, "#")
    name = person_name(facts["first_name"], facts["last_name"])
    base = EmailPreview(
        message.id,
        prospect_id,
        name or facts["email"],
        key,
        message.step_id,
        message.template_key,
        str(message.status),
        message.sent_at,
        message.subject or "",
        "",
        "",
    )
    try:
        if isinstance(template, TemplateError):
            raise template
        rendered = renderer.render(
            template, message.subject or "", step.preheader if step else None, context
        )
    except (TemplateError, JinjaError) as exc:  # a sandbox refusal is a Jinja error too
        return replace(base, error=str(exc))
    return replace(base, subject=rendered.subject, html=rendered.html, text=rendered.text)
