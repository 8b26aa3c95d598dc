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
from engine.mail.links import unsubscribe_url
from engine.mail.outgoing import Envelope, tracked_message
from engine.mail.render import Renderer, StoredTemplate
from engine.mail.tokens import AddressTag, TokenSigner, message_id_header, tagged_address
from engine.spec.sequence import EmailStep, SequenceSpec


@dataclass(frozen=True)
class Composed:
    raw: bytes
    from_addr: str
    to_addr: str
    message_id_header: str
    links: list[str]
    template_checksum: str
    return_path: str  # the envelope sender (VERP): where this message's bounces come back


@dataclass(frozen=True)
class Sender:
    name: str | None
    email: str

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()


def sender_of(spec: SequenceSpec | None, step: EmailStep | None, settings: Settings) -> Sender:
    """The step's From, else the sequence's, else the configured default."""
    chosen = (step.sender if step else None) or (spec.sender if spec else None)
    if chosen is not None:
        return Sender(chosen.name, chosen.email)
    name, email = parseaddr(settings.mail_from)
    return Sender(name or None, email or settings.mail_from)


def email_step(spec: SequenceSpec, step_id: str) -> EmailStep | None:
    for sid, step in zip(spec.step_ids(), spec.steps, strict=True):
        if sid == step_id and isinstance(step, EmailStep):
            return step
    return None


@dataclass(frozen=True)
class InboundAddresses:
    """The addresses of one message that lead back to it (docs/inbound.md).

    The envelope sender is tagged per message (VERP), so a bounce names the message even
    when the bounce itself quotes nothing of it; so is the List-Unsubscribe mailto. The
    Reply-To is tagged when a reply address is configured; otherwise a reply is matched by
    the keyed Message-ID it quotes in In-Reply-To/References.
    """

    return_path: str
    reply_to: str | None
    unsubscribe_mailto: str


def inbound_addresses(
    message_id: int, sender: Sender, reply_to: str | None, settings: Settings, signer: TokenSigner
) -> InboundAddresses:
    """``reply_to`` is the sequence's own. A configured reply address replaces it: the
    operator chose to have replies come to Nurture (and to the owner, in the handoff)."""
    bounces = settings.bounce_address or f"bounces@{sender.domain}"
    if settings.reply_address:
        reply_to = tagged_address(
            settings.reply_address, signer.address_tag(AddressTag.REPLY, message_id)
        )
    unsubscribe = tagged_address(bounces, signer.address_tag(AddressTag.UNSUBSCRIBE, message_id))
    return InboundAddresses(
        return_path=tagged_address(bounces, signer.address_tag(AddressTag.BOUNCE, message_id)),
        reply_to=reply_to,
        unsubscribe_mailto=f"mailto:{unsubscribe}?subject=unsubscribe",
    )


def render_context(
    prospect: dict[str, Any],
    sender: Sender,
    settings: Settings,
    unsubscribe: str,
    owner_name: str | None = None,
) -> dict[str, Any]:
    """The variables templates may use (templates/README.md documents them).

    ``owner`` is None (false in ``{% if owner %}``) when the prospect has no owner; its
    ``name`` is the linked sales user's, None when only the CRM's address is known. The
    renderer turns every None into an empty value a template's fallback replaces.
    """
    owner_email = prospect.get("owner")
    owner = {"name": owner_name, "email": owner_email} if owner_email else None
    return {
        "prospect": prospect,
        "sender": {
            "name": sender.name,
            "email": sender.email,
            "company": settings.company_name,
            "company_url": settings.company_url,
            "postal_address": settings.postal_address,
        },
        "owner": owner,
        "unsubscribe_url": unsubscribe,
        "base_url": settings.base_url,
    }


def compose(
    *,
    message_id: int,
    template: str | StoredTemplate,
    subject_source: str,
    prospect: dict[str, Any],
    spec: SequenceSpec,
    step_id: str,
    settings: Settings,
    renderer: Renderer,
    signer: TokenSigner,
    now: datetime,
    owner_name: str | None = None,
) -> Composed:
    """Everything per recipient, in order: context, Jinja render, link tracking, MIME."""
    step = email_step(spec, step_id)
    sender = sender_of(spec, step, settings)
    unsubscribe = unsubscribe_url(settings.base_url, message_id, signer)
    context = render_context(prospect, sender, settings, unsubscribe, owner_name)
    rendered = renderer.render(template, subject_source, step.preheader if step else None, context)
    header_id = message_id_header(message_id, sender.domain, signer)
    addresses = inbound_addresses(message_id, sender, spec.reply_to, settings, signer)
    envelope = Envelope(
        from_addr=sender.email,
        from_name=sender.name,
        to_addr=prospect["email"],
        reply_to=addresses.reply_to,
        message_id=header_id,
        date=now,
        list_unsubscribe_url=unsubscribe,
        list_unsubscribe_mailto=addresses.unsubscribe_mailto,
    )
    # Tracking and MIME the fast way: the same bytes as track_links + build_message.
    message = tracked_message(rendered, envelope, settings.base_url, message_id, signer)
    return Composed(
        message.raw,
        sender.email,
        prospect["email"],
        header_id,
        message.links,
        rendered.template_checksum,
        addresses.return_path,
    )
