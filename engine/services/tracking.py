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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.core.bots import (
    DEFAULTS,
    Click,
    RequestInfo,
    Thresholds,
    Verdict,
    classify_click,
    classify_honeypot,
    classify_open,
    machine_bursts,
)
from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.mail.links import HONEYPOT_LINK_INDEX
from engine.mail.tokens import BadTokenError, TokenSigner
from engine.services.engagement import restamp_engagement
from engine.services.events import record_within
from engine.services.message_stamps import restamp_messages
from engine.services.schemas import EngineEventInput
from engine.services.scoring import current_scoring, refresh_scores
from engine.store import Event, Message, ScoreEntry, UnitOfWork, end_read

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

SOURCE = "tracking"
CLICKED = "email.clicked"
MAX_TOKEN_LENGTH = 120
"""Our tokens are under 60 characters; anything much longer is refused before parsing."""

# How many of a message's latest clicks the burst check looks at: plenty for any real
# pattern, and a hammered link cannot make a click cost more than this.
_CLICK_HISTORY = 200
_NOT_FOUND = "no such link"
_TAKEN_BACK = "machine:"


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
        raise NotFoundError(_NOT_FOUND)
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


def link_of(session: Session | Connection, message_id: int, index: int) -> str:
    """``message.links[index]`` of a sent message, or the one ``NotFoundError``.

    Anything but a real link of the message the signed token names (unknown or unsent
    message, index out of range, a stored link that is not http(s)) is refused alike, so
    the redirect can never be pointed elsewhere. Reads through a session (the judging) or
    a bare connection (the click's answer, which opens no unit of work).
    """
    row = session.execute(
        select(Message.sent_at, Message.links).where(Message.id == message_id)
    ).first()
    return link_at(row.links if row is not None and row.sent_at is not None else None, index)


def link_at(links: list[str] | None, index: int) -> str:
    """``links[index]`` of a sent message's stored links (None: no sent message), or the
    one ``NotFoundError`` for anything but a plain http(s) link there."""
    links = links or []
    if not 0 <= index < len(links):
        raise NotFoundError(_NOT_FOUND)
    url = links[index]
    if not isinstance(url, str) or not url[:8].lower().startswith(("http://", "https://")):
        raise NotFoundError(_NOT_FOUND)
    return url


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
    prior = _clicks(uow, message_id)
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


def unsubscribe_token_message(token: str, *, signer: TokenSigner) -> int | None:
    """The message id of an unsubscribe token, or None for anything we did not sign."""
    parsed: int | None = parse_token(signer.parse_unsubscribe, token)
    return parsed


def parse_token(parse: Any, token: str) -> Any:
    """``parse(token)``, or None for anything that is not one of our tokens.

    Tokens are short ASCII; longer or non-ASCII input is refused before the signature is
    checked (``hmac.compare_digest`` raises TypeError on non-ASCII strings).
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    try:
        return parse(token)
    except BadTokenError:
        return None


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


def _clicks(uow: UnitOfWork, message_id: int) -> list[Click]:
    """The message's latest tracked clicks and honeypot hits, as the classifier reads them.

    Only our own (``source="tracking"``) events: a click posted through the API carries no
    link index or request to judge.
    """
    rows = uow.session.execute(
        select(Event.id, Event.occurred_at, Event.data, Event.machine)
        .where(Event.message_id == message_id, Event.type == CLICKED, Event.source == SOURCE)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(_CLICK_HISTORY)
    ).all()
    clicks = []
    for event_id, occurred_at, data, machine in rows:
        details = data or {}
        index = None if details.get("honeypot") else details.get("link_index", -1)
        clicks.append(Click(occurred_at, index, event_id, bool(machine)))
    return clicks


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


def flag_bursts(uow: UnitOfWork, message_id: int, now: datetime, thresholds: Thresholds) -> int:
    """Mark as machine the clicks of the message that, with what is known now, belong to a
    scanner's burst, and take back the points they earned; returns how many were flagged.

    Runs after the new click is committed, in its own transaction, so of two concurrent
    clicks at least the later one sees the other (see ``machine_bursts``).
    """
    with uow:
        session = uow.session
        flagged = machine_bursts(_clicks(uow, message_id), thresholds)
        changed: dict[int, str] = {}
        for event_id, reason in flagged.items():
            result = session.execute(
                update(Event)
                .where(Event.id == event_id, Event.machine.is_(False))
                .values(machine=True, machine_reason=reason[:200])
            )
            if result.rowcount:  # type: ignore[attr-defined]
                changed[event_id] = reason
        if not changed:  # every judged click's usual outcome
            end_read(uow)
            return 0
        restamp_messages(session, [message_id])  # a person's click may have been the scanner's
        _take_back_points(session, changed, now)
        restamp_engagement(session, changed)
        uow.commit()
    log.info("message %s: %d click(s) flagged as a scanner's burst", message_id, len(changed))
    return len(changed)


def _take_back_points(session: Session, flagged: dict[int, str], now: datetime) -> None:
    """Cancel what the flagged events earned while they looked human.

    The ledger is append-only, so each of their entries gets an opposite entry, same moment
    (so decay cancels exactly), rule ``machine:<rule>``, the reason in the note. A handoff
    the points already caused stays: sales sees the events, machine flags included.
    """
    entries = session.execute(
        select(
            ScoreEntry.prospect_id,
            ScoreEntry.event_id,
            ScoreEntry.rule,
            ScoreEntry.points,
            ScoreEntry.occurred_at,
        ).where(ScoreEntry.event_id.in_(list(flagged)), ScoreEntry.points != 0)
    ).all()
    for prospect_id, event_id, rule, points, occurred_at in entries:
        if rule.startswith(_TAKEN_BACK):
            continue
        session.add(
            ScoreEntry(
                prospect_id=prospect_id,
                event_id=event_id,
                rule=f"{_TAKEN_BACK}{rule}"[:200],
                points=-points,
                occurred_at=occurred_at,
                created_at=now,
                note=f"event found to be a machine's afterwards: {flagged[event_id]}",
            )
        )
    spec = current_scoring(session)
    if spec is not None and entries:
        refresh_scores(session, {row.prospect_id for row in entries}, spec, now)
