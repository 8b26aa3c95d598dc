"""See a template as a recipient would, and send yourself a test, without tracking anything.

The web editor shows a live preview of the text being edited (an unsaved draft laid over
the stored templates), rendered by the real renderer for a sample prospect or a real one;
"send a test to me" takes the same email through the real MIME builder and transport.
Neither makes an outbox row, a tracking token or an event: the links in a preview and in a
test email are the original ones, there is no open pixel, and the unsubscribe link points
at a page that refuses it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.exceptions import ConflictError, NotFoundError
from engine.mail.catalog import TEMPLATE_SUFFIX, SourcesCatalog, TemplateError
from engine.mail.footer import SAMPLES
from engine.mail.mime import build_message
from engine.mail.render import RenderedEmail, Renderer, StoredTemplate, content_checksum
from engine.mail.transport import PermanentSendError, TransientSendError, Transport
from engine.services.compose import Sender, render_context, sender_of
from engine.services.loading import prospect_facts, spec_of
from engine.services.template_versions import (
    LABEL_PREFIX,
    TemplateProblem,
    TemplateValidationError,
    check_path,
    check_source,
    current_sources,
    problems_of,
)
from engine.spec.sequence import EmailStep, SequenceSpec
from engine.store import Prospect, Sequence, SequenceVersion, UnitOfWork, User

GMAIL_CLIP_BYTES = 102 * 1024
"""Gmail shows "[Message clipped]" and hides the rest (the footer too) past this size."""
TEST_SUBJECT_PREFIX = "[TEST] "


class PreviewSendError(ConflictError):
    """The transport refused the test email; the message says what the server answered."""


@dataclass(frozen=True)
class PreviewRequest:
    """What to preview: the email ``key``, drafts (``{path: unsaved text}``) laid over the
    stored templates, the subject and preheader (None: those of the first sequence step
    that sends this template), and for whom (a prospect's id or email; None: a sample,
    with ``fields`` laid over it: the simulator's typed-in prospect)."""

    key: str
    drafts: Mapping[str, str] | None = None
    subject: str | None = None
    preheader: str | None = None
    prospect_id: int | None = None
    prospect_email: str | None = None
    fields: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TemplatePreview:
    ok: bool
    problems: list[TemplateProblem]
    subject: str
    preheader: str
    html: str
    text: str
    html_bytes: int
    clipped: bool  # larger than Gmail's clipping limit
    recipient: str  # the prospect's address, or the sample's
    sample: bool
    template_checksum: str | None


@dataclass(frozen=True)
class TestEmail:
    to_addr: str
    subject: str
    message_id_header: str
    template_checksum: str


@dataclass(frozen=True)
class _Prepared:
    template: StoredTemplate | None
    problems: list[TemplateProblem]
    context: dict[str, Any]
    sender: Sender
    reply_to: str | None
    subject: str
    preheader: str | None
    recipient: str
    sample: bool


def preview_unsubscribe_url(settings: Settings) -> str:
    """Where a preview's unsubscribe link goes: the unsubscribe page, with no valid token,
    so following it changes nothing (the page says the link is not valid)."""
    return f"{settings.base_url.rstrip('/')}/u/preview"


def preview_template(
    uow: UnitOfWork, settings: Settings, request: PreviewRequest, renderer: Renderer | None = None
) -> TemplatePreview:
    """Render ``request`` with tracking off. Problems (a draft that does not compile, a
    render that fails) come back in ``problems`` at their file and line, not as errors;
    an unknown prospect raises :class:`NotFoundError`."""
    prepared = _prepare(uow, settings, request)
    rendered, problems = _render(prepared, renderer or Renderer())
    if rendered is None:
        return TemplatePreview(
            False, problems, "", "", "", "", 0, False, prepared.recipient, prepared.sample, None
        )
    size = len(rendered.html.encode("utf-8"))
    return TemplatePreview(
        ok=True,
        problems=[],
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=rendered.html,
        text=rendered.text,
        html_bytes=size,
        clipped=size > GMAIL_CLIP_BYTES,
        recipient=prepared.recipient,
        sample=prepared.sample,
        template_checksum=rendered.template_checksum,
    )


def send_test_email(
    uow: UnitOfWork,
    settings: Settings,
    renderer: Renderer,
    transport: Transport,
    request: PreviewRequest,
    to_addr: str,
    now: datetime,
) -> TestEmail:
    """Send the previewed email to ``to_addr`` through the real MIME builder and
    transport, its subject marked ``[TEST]``, tracking off, nothing recorded. Raises
    :class:`TemplateValidationError` when it does not render, :class:`PreviewSendError`
    when the server refuses it (with no SMTP configured it lands in the local outbox)."""
    prepared = _prepare(uow, settings, request)
    rendered, problems = _render(prepared, renderer)
    if rendered is None:
        raise TemplateValidationError(problems)
    domain = prepared.sender.domain
    message_id = f"<test.{secrets.token_hex(8)}@{domain}>"
    subject = TEST_SUBJECT_PREFIX + rendered.subject
    return_path = settings.bounce_address or f"bounces@{domain}"
    try:
        raw = build_message(
            from_addr=prepared.sender.email,
            from_name=prepared.sender.name,
            to_addr=to_addr,
            reply_to=prepared.reply_to,
            subject=subject,
            html=rendered.html,
            text=rendered.text,
            message_id=message_id,
            date=now,
            list_unsubscribe_url=preview_unsubscribe_url(settings),
            list_unsubscribe_mailto="",
        )
        transport.send(return_path, to_addr, raw)
    except ValueError as exc:  # an address build_message refuses
        raise TemplateValidationError([TemplateProblem(None, None, str(exc))]) from None
    except (TransientSendError, PermanentSendError) as exc:
        raise PreviewSendError(f"the mail server did not take the test email: {exc}") from None
    return TestEmail(to_addr, subject, message_id, rendered.template_checksum)


# --- the shared preparation ---------------------------------------------------------------


def _prepare(uow: UnitOfWork, settings: Settings, request: PreviewRequest) -> _Prepared:
    path = check_path(f"{request.key}{TEMPLATE_SUFFIX}")
    drafts = {
        check_path(p): check_source(LABEL_PREFIX + p, s) for p, s in (request.drafts or {}).items()
    }
    with uow:
        session = uow.session
        sources = current_sources(session) | drafts
        prospect, owner_name, sample = _recipient(session, request)
        spec_step = _step_using(session, request.key)
    spec, step = spec_step if spec_step else (None, None)
    sender = sender_of(spec, step, settings)
    context = render_context(
        prospect, sender, settings, preview_unsubscribe_url(settings), owner_name
    )
    subject = request.subject if request.subject is not None else (step.subject if step else "")
    preheader = (
        request.preheader if request.preheader is not None else (step.preheader if step else None)
    )
    template: StoredTemplate | None = None
    problems: list[TemplateProblem] = []
    if path not in sources:
        problems.append(
            TemplateProblem(
                f"{LABEL_PREFIX}{path}", None, "not found: save it first, or pass it as a draft"
            )
        )
    else:
        try:
            _, used = SourcesCatalog(sources, LABEL_PREFIX).compile_with_sources(request.key)
        except TemplateError as exc:
            problems = problems_of(exc.errors)
        else:
            checksum = content_checksum(used, request.key)
            template = StoredTemplate(request.key, checksum, lambda: used)
    return _Prepared(
        template,
        problems,
        context,
        sender,
        spec.reply_to if spec is not None else None,
        subject or f"Preview of {request.key}",
        preheader,
        str(prospect["email"]),
        sample,
    )


def _render(
    prepared: _Prepared, renderer: Renderer
) -> tuple[RenderedEmail | None, list[TemplateProblem]]:
    if prepared.template is None:
        return None, prepared.problems
    try:
        rendered = renderer.render(
            prepared.template, prepared.subject, prepared.preheader, prepared.context
        )
    except TemplateError as exc:
        return None, problems_of(exc.errors)
    return rendered, []


def _recipient(
    session: Session, request: PreviewRequest
) -> tuple[dict[str, Any], str | None, bool]:
    """The prospect's facts and owner name, or the sample's; raises NotFoundError."""
    if request.prospect_id is None and request.prospect_email is None:
        _, facts, owner_name = SAMPLES[0]
        return dict(facts) | dict(request.fields or {}), owner_name, True
    stmt = select(Prospect, User.name).outerjoin(User, User.id == Prospect.owner_user_id)
    if request.prospect_id is not None:
        stmt = stmt.where(Prospect.id == request.prospect_id)
    else:
        stmt = stmt.where(Prospect.email == str(request.prospect_email).strip().lower())
    row = session.execute(stmt).first()
    if row is None:
        who = request.prospect_id if request.prospect_id is not None else request.prospect_email
        raise NotFoundError(f"no prospect {who!r}")
    prospect, owner_name = row
    return prospect_facts(prospect), owner_name or None, False


def _step_using(session: Session, key: str) -> tuple[SequenceSpec, EmailStep] | None:
    """The first email step (active sequences first, by key) that sends template ``key``."""
    rows = session.execute(
        select(SequenceVersion)
        .join(Sequence, Sequence.current_version_id == SequenceVersion.id)
        .order_by(Sequence.active.desc(), Sequence.key)
    ).scalars()
    for version in rows:
        spec = spec_of(version)
        for step in spec.steps:
            if isinstance(step, EmailStep) and step.email == key:
                return spec, step
    return None
