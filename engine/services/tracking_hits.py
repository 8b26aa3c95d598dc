"""The fast path of the tracking endpoints: record the hit, answer, judge it in a job.

A pixel, click or honeypot request writes one ``tracking_hits`` row (plus, for a click,
one primary-key read of the message's links, because the redirect needs them) and
returns: no prospect or message row is locked, nothing is scored while the person waits,
so a burst of opens of one message does not serialise.

``drain_hits`` (run by ``workers.jobs.tracking_hits_job``, queued after every hit and by
every tick as a backstop) then judges each hit exactly as the endpoint used to, with the
hit's ``received_at`` as the moment: the same bot verdicts, keys, points, exits, handoffs
and hindsight flags (``engine.services.tracking``). Each hit is claimed with ``FOR UPDATE
SKIP LOCKED``, judged and deleted in one transaction, so a worker dying midway leaves the
hit to be judged again, and two drains never judge one hit twice. The hindsight flagging
runs after that commit, as before; a crash between the two is caught up by the message's
next click or honeypot hit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, insert, select

from engine.core.bots import DEFAULTS, RequestInfo, Thresholds
from engine.exceptions import NotFoundError
from engine.mail.links import HONEYPOT_LINK_INDEX
from engine.mail.tokens import TokenSigner
from engine.services.tracking import (
    flag_bursts,
    judge_click,
    judge_honeypot,
    judge_open,
    link_of,
    parse_token,
)
from engine.store import TrackingHit, UnitOfWork

__all__ = ["CLICK", "HONEYPOT", "OPEN", "accept_click", "accept_hit", "drain_hits"]

log = logging.getLogger(__name__)

OPEN = "open"
CLICK = "click"
HONEYPOT = "honeypot"
_NOT_FOUND = "no such link"


def accept_hit(
    uow: UnitOfWork,
    kind: str,
    token: str,
    request: RequestInfo,
    now: datetime,
    *,
    signer: TokenSigner,
) -> bool:
    """Record a pixel (``OPEN``) or honeypot (``HONEYPOT``) hit to be judged; True when one
    was written. A token we did not sign (or a real link's token at the honeypot) writes
    nothing; whether its message exists is the drain's question, not the answer's."""
    if kind == OPEN:
        message_id = parse_token(signer.parse_open, token)
    else:
        parsed = parse_token(signer.parse_click, token)
        ok = parsed is not None and parsed[1] == HONEYPOT_LINK_INDEX
        message_id = parsed[0] if ok else None
    if message_id is None:
        return False
    with uow:
        _insert(uow, kind, message_id, None, request, now)
        uow.commit()
    return True


def accept_click(
    uow: UnitOfWork, token: str, request: RequestInfo, now: datetime, *, signer: TokenSigner
) -> str:
    """The URL a click token leads to (``link_of``: the message's own links only, else the
    one ``NotFoundError``), after writing the hit to be judged. Once the URL is known, a
    failure to write the hit is logged, not raised: the person still gets to the page."""
    parsed = parse_token(signer.parse_click, token)
    if parsed is None:
        raise NotFoundError(_NOT_FOUND)
    message_id, index = parsed
    with uow:
        url = link_of(uow.session, message_id, index)
        try:
            _insert(uow, CLICK, message_id, index, request, now)
            uow.commit()
        except Exception:  # the redirect matters more than the bookkeeping
            log.exception("message %s: could not record a click", message_id)
    return url


def _insert(
    uow: UnitOfWork,
    kind: str,
    message_id: int,
    index: int | None,
    request: RequestInfo,
    now: datetime,
) -> None:
    uow.session.execute(
        insert(TrackingHit).values(
            kind=kind,
            message_id=message_id,
            link_index=index,
            received_at=now,
            user_agent=request.user_agent[:1000],
            ip=(request.ip or None) and request.ip[:64],
            method=request.method[:16],
        )
    )


def drain_hits(uow: UnitOfWork, thresholds: Thresholds = DEFAULTS, *, limit: int = 1000) -> int:
    """Judge up to ``limit`` waiting hits, oldest first, each in its own transaction;
    returns how many were taken. Safe to run concurrently and to run again after a crash.

    A hit whose judging fails unexpectedly is logged and dropped, as the endpoint's own
    recording failure was: it must not block every hit behind it.
    """
    taken = 0
    while taken < limit and _judge_next(uow, thresholds):
        taken += 1
    return taken


def _judge_next(uow: UnitOfWork, thresholds: Thresholds) -> bool:
    """Judge the oldest unclaimed hit; False when none is waiting."""
    claimed: list[int] = []
    try:
        return _judge(uow, thresholds, claimed)
    except Exception:
        if not claimed:  # the claim itself failed (database gone): leave it for a later drain
            raise
        log.exception("tracking: could not judge hit %s; dropping it", claimed[0])
        with uow:
            uow.session.execute(delete(TrackingHit).where(TrackingHit.id == claimed[0]))
            uow.commit()
        return True


def _judge(uow: UnitOfWork, thresholds: Thresholds, claimed: list[int]) -> bool:
    """Claim the oldest unclaimed hit (its id goes into ``claimed``), record its event and
    delete it, in one transaction; then flag the message's clicks with hindsight."""
    with uow:
        hit = _claim(uow)
        if hit is None:
            return False
        claimed.append(hit.id)
        request = RequestInfo(user_agent=hit.user_agent, ip=hit.ip, method=hit.method)
        at, message_id = hit.received_at, hit.message_id
        if hit.kind == OPEN:
            judge_open(uow, message_id, request, at)
            clicked = False
        elif hit.kind == CLICK:
            index = hit.link_index if hit.link_index is not None else -1
            clicked = judge_click(uow, message_id, index, request, at, thresholds)
        else:
            clicked = judge_honeypot(uow, message_id, at)
        uow.session.execute(delete(TrackingHit).where(TrackingHit.id == hit.id))
        uow.commit()
    if clicked:
        flag_bursts(uow, message_id, at, thresholds)
    return True


def _claim(uow: UnitOfWork) -> TrackingHit | None:
    return uow.session.scalars(
        select(TrackingHit).order_by(TrackingHit.id).limit(1).with_for_update(skip_locked=True)
    ).first()
