"""Opens, clicks and honeypot hits from the public tracking endpoints, as events.

Each request is classified (person or machine, ``engine.core.bots``) from what it looked
like, when the message was sent and the message's other clicks, then recorded through
``record_event`` with ``source="tracking"``, so scoring and the active nurture react to it
like to any other event, and machine events score nothing.

The endpoints are public and their tokens travel in forwarded mail, so nothing here tells
a caller more than a token already does: a forged token, a message that does not exist or
was never sent, and a prospect erased since all end the same way (no event; for a click,
the one :class:`~engine.exceptions.NotFoundError` with the one message).

Idempotency: opens are collapsed per message, minute and verdict (a mail client showing a
message fetches the pixel again on every redraw; a proxy's fetch in that minute must not
swallow a person's). Clicks and honeypot hits get no key: two clicks are two events, and a
key per time bucket would drop the second of two real clicks, or let a scanner's click hide
a person's in the same minute. The rare double count (a double-click, a browser re-sending a
GET over a dropped keep-alive connection) is bounded by the scoring rules' daily caps.

This module judges; what a token names (``engine.services.tracking_links``) and the burst
flagging after a click is committed (``engine.services.click_bursts``) live beside it, and
their names are re-exported here for the endpoints and the fast path that use them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.core.bots import (
    DEFAULTS,
    RequestInfo,
    Thresholds,
    Verdict,
    classify_click,
    classify_honeypot,
    classify_open,
)
from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.mail.links import HONEYPOT_LINK_INDEX
from engine.mail.tokens import TokenSigner
from engine.services.click_bursts import CLICKED, SOURCE, flag_bursts, tracked_clicks
from engine.services.events import record_within
from engine.services.schemas import EngineEventInput
from engine.services.tracking_links import (
    MAX_TOKEN_LENGTH,
    NOT_FOUND,
    link_at,
    link_of,
    parse_token,
    unsubscribe_token_message,
)
from engine.store import Message, UnitOfWork

__all__ = [
    "MAX_TOKEN_LENGTH",
    "RequestInfo",
    "flag_bursts",
    "judge_click",
    "judge_honeypot",
    "judge_open",
    "link_at",
    "link_of",
    "parse_token",
    "record_honeypot",
    "record_open",
    "resolve_click",
    "thresholds_from",
    "unsubscribe_token_message",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Sent:
    """The little a tracking request needs of its outbox row."""

    id: int
    prospect_id: int
    step_id: str
    template_key: str
    sent_at: datetime
    links: list[str]


def thresholds_from(settings: Settings) -> Thresholds:
    """The bot filter's timing rules as configured (``NURTURE_BOT_*``): scanners differ
    between a company's mail security products, so an operator can tune them."""
    return Thresholds(
        min_click_delay=timedelta(seconds=settings.bot_min_click_delay_seconds),
        burst_gap=timedelta(seconds=settings.bot_burst_gap_seconds),
        burst_links=settings.bot_burst_links,
        honeypot_window=timedelta(seconds=settings.bot_honeypot_window_seconds),
    )


def record_open(
    uow: UnitOfWork,
    token: str,
    request: RequestInfo,
    now: datetime,
    *,
    signer: TokenSigner,
) -> bool:
    """Record an ``email.opened`` event for the pixel ``token`` now; True when one was
    stored (the web endpoint records a hit instead: ``engine.services.tracking_hits``).

    Never raises for a bad token, an unknown or unsent message or an erased prospect: the
    pixel is answered the same whatever happened here.
    """
    message_id = parse_token(signer.parse_open, token)
    if message_id is None:
        return False
    with uow:
        recorded = judge_open(uow, message_id, request, now)
        uow.commit()
    return recorded


def resolve_click(
    uow: UnitOfWork,
    token: str,
    request: RequestInfo,
    now: datetime,
    *,
    signer: TokenSigner,
    thresholds: Thresholds = DEFAULTS,
) -> str:
    """The URL click ``token`` leads to, after recording the ``email.clicked`` event.

    The URL is always ``message.links[index]`` of the sent message the token names, never
    anything taken from the request (see :func:`link_of`). Once the URL is known, failing
    to record the event is logged, not raised: the person still gets to the page.
    """
    parsed = parse_token(signer.parse_click, token)
    if parsed is None:
        raise NotFoundError(NOT_FOUND)
    message_id, index = parsed
    with uow:
        url = link_of(uow.session, message_id, index)
    try:
        with uow:
            recorded = judge_click(uow, message_id, index, request, now, thresholds)
            uow.commit()
        if recorded:
            flag_bursts(uow, message_id, now, thresholds)
    except Exception:  # the redirect matters more than the bookkeeping
        log.exception("message %s: could not record a click", message_id)
    return url


def record_honeypot(
    uow: UnitOfWork,
    token: str,
    request: RequestInfo,
    now: datetime,
    *,
    signer: TokenSigner,
    thresholds: Thresholds = DEFAULTS,
) -> bool:
    """Record a request for the hidden honeypot link now, and flag the clicks around it.
    Only the honeypot's own token is accepted (see :func:`judge_honeypot`)."""
    parsed = parse_token(signer.parse_click, token)
    if parsed is None or parsed[1] != HONEYPOT_LINK_INDEX:
        return False
    with uow:
        recorded = judge_honeypot(uow, parsed[0], now)
        uow.commit()
    if recorded:
        flag_bursts(uow, parsed[0], now, thresholds)
    return recorded


def judge_open(uow: UnitOfWork, message_id: int, request: RequestInfo, now: datetime) -> bool:
    """Classify an open of ``message_id`` at ``now`` and store its event, in the caller's
    open unit of work; True when one was stored (False: unsent or unknown message, erased
    prospect, or the same open again)."""
    sent = _sent(uow.session, message_id)
    if sent is None:
        return False
    verdict = classify_open(request)
    minute = now.strftime("%Y%m%d%H%M")
    kind = "machine" if verdict.machine else "human"
    return _record(
        uow,
        sent,
        "email.opened",
        {"step": sent.step_id, "template": sent.template_key},
        verdict,
        now,
        key=f"open:{sent.id}:{minute}:{kind}",
    )


def judge_click(
    uow: UnitOfWork,
    message_id: int,
    index: int,
    request: RequestInfo,
    now: datetime,
    thresholds: Thresholds = DEFAULTS,
) -> bool:
    """Classify a click on link ``index`` at ``now`` against the message's clicks so far
    and store its event, in the caller's open unit of work; True when one was stored. The
    caller runs :func:`flag_bursts` once this is committed."""
    try:
        url = link_of(uow.session, message_id, index)
    except NotFoundError:
        return False
    sent = _sent(uow.session, message_id)
    if sent is None:
        return False
    prior = tracked_clicks(uow, message_id)
    verdict = classify_click(request, sent.sent_at, now, index, prior, thresholds)
    data = {"url": url, "step": sent.step_id, "template": sent.template_key}
    return _record(uow, sent, CLICKED, {**data, "link_index": index}, verdict, now)


def judge_honeypot(uow: UnitOfWork, message_id: int, now: datetime) -> bool:
    """Store a honeypot hit as a machine ``email.clicked`` with ``honeypot: true`` and no
    URL (no sequence can branch on it, no rule can score it), in the caller's open unit of
    work. The caller runs :func:`flag_bursts` once this is committed."""
    sent = _sent(uow.session, message_id)
    if sent is None:
        return False
    data = {"step": sent.step_id, "template": sent.template_key, "link_index": None}
    return _record(uow, sent, CLICKED, {**data, "honeypot": True}, classify_honeypot(), now)


def _sent(session: Session, message_id: int) -> _Sent | None:
    """The message, if it exists and went out (only a sent message's links are known)."""
    row = session.execute(
        select(
            Message.id,
            Message.prospect_id,
            Message.step_id,
            Message.template_key,
            Message.sent_at,
            Message.links,
        ).where(Message.id == message_id)
    ).first()
    if row is None or row.sent_at is None:
        return None
    return _Sent(
        row.id, row.prospect_id, row.step_id, row.template_key, row.sent_at, row.links or []
    )


def _record(
    uow: UnitOfWork,
    sent: _Sent,
    event_type: str,
    data: dict[str, Any],
    verdict: Verdict,
    now: datetime,
    *,
    key: str | None = None,
) -> bool:
    """Store the event through ``record_within``, in a savepoint of the caller's unit of
    work; False (nothing stored, nothing raised) for a duplicate or a prospect erased since
    the message went out. An open's key names its minute, so a second fetch in that minute
    repeats the key with another instant: a conflict by the rules for clients, and here
    simply the same open again."""
    event = EngineEventInput(
        type=event_type,
        prospect_id=sent.prospect_id,
        occurred_at=now,
        data=data,
        idempotency_key=key,
        message_id=sent.id,
        source=SOURCE,
        machine=verdict.machine,
        machine_reason=verdict.reason[:200] if verdict.reason else None,
    )
    try:
        with uow.session.begin_nested():
            result = record_within(uow, event, now)
    except (NotFoundError, InvalidInputError, ConflictError):
        return False
    return not result.duplicate
