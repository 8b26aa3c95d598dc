"""Turn one outbox row into the exact bytes to send: render, track, build MIME.

Kept apart from the delivery loop so the per-recipient hot path is one short function that
the benchmark measures as-is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from engine.config import Settings
from engine.mail.links import track_links, unsubscribe_url
from engine.mail.mime import build_message
from engine.mail.render import Renderer
from engine.mail.tokens import TokenSigner, message_id_header
from engine.spec.sequence import EmailStep, SequenceSpec


@dataclass(frozen=True)
class Composed:
    raw: bytes
    from_addr: str
    to_addr: str
    message_id_header: str
    links: list[str]
    template_checksum: str


@dataclass(frozen=True)
class Sender:
    name: str | None
    email: str

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


def sender_of(spec: SequenceSpec, step: EmailStep | None, settings: Settings) -> Sender:
    """The step's From, else the sequence's, else the configured default."""
    chosen = (step.sender if step else None) or spec.sender
    if chosen is not None:
        return Sender(chosen.name, chosen.email)
    name, email = parseaddr(settings.mail_from)
    return Sender(name or None, email or settings.mail_from)


def email_step(spec: SequenceSpec, step_id: str) -> EmailStep | None:
    for sid, step in zip(spec.step_ids(), spec.steps, strict=True):
        if sid == step_id and isinstance(step, EmailStep):
            return step
    return None


def render_context(
    prospect: dict[str, Any], sender: Sender, settings: Settings, unsubscribe: str
) -> dict[str, Any]:
    """The variables templates may use (templates/README.md documents them)."""
    owner = prospect.get("owner")
    return {
        "prospect": prospect,
        "sender": {
            "name": sender.name,
            "email": sender.email,
            "company": settings.company_name,
            "postal_address": settings.postal_address,
        },
        "owner": {"name": None, "email": owner},
        "unsubscribe_url": unsubscribe,
        "base_url": settings.base_url,
    }


def compose(
    *,
    message_id: int,
    template_key: str,
    subject_source: str,
    prospect: dict[str, Any],
    spec: SequenceSpec,
    step_id: str,
    settings: Settings,
    renderer: Renderer,
    signer: TokenSigner,
    now: datetime,
) -> Composed:
    """Everything per recipient, in order: context, Jinja render, link tracking, MIME."""
    step = email_step(spec, step_id)
    sender = sender_of(spec, step, settings)
    unsubscribe = unsubscribe_url(settings.base_url, message_id, signer)
    context = render_context(prospect, sender, settings, unsubscribe)
    rendered = renderer.render(
        template_key, subject_source, step.preheader if step else None, context
    )
    tracked = track_links(rendered.html, rendered.text, settings.base_url, message_id, signer)
    header_id = message_id_header(message_id, sender.domain, signer)
    raw = build_message(
        from_addr=sender.email,
        from_name=sender.name,
        to_addr=prospect["email"],
        reply_to=spec.reply_to,
        subject=rendered.subject,
        html=tracked.html,
        text=tracked.text,
        message_id=header_id,
        date=now,
        list_unsubscribe_url=unsubscribe,
        list_unsubscribe_mailto=f"mailto:unsubscribe@{sender.domain}?subject=unsubscribe-{message_id}",
    )
    return Composed(
        raw, sender.email, prospect["email"], header_id, tracked.links, rendered.template_checksum
    )
