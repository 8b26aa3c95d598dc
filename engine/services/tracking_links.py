"""What a tracking token names: the token checked and parsed, and the sent message's link.

Split from the judging (``engine.services.tracking``) because both the judging and the
fast path that records hits first (``engine.services.tracking_hits``) need exactly these
answers, and they must be the same answers: the endpoints are public and their tokens
travel in forwarded mail, so a forged token, a message that does not exist or was never
sent, and a link index out of range all end the same way (None, or the one
:class:`~engine.exceptions.NotFoundError` with the one message).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from engine.exceptions import NotFoundError
from engine.mail.tokens import BadTokenError, TokenSigner
from engine.store import Message

__all__ = [
    "MAX_TOKEN_LENGTH",
    "NOT_FOUND",
    "link_at",
    "link_of",
    "parse_token",
    "unsubscribe_token_message",
]

MAX_TOKEN_LENGTH = 120
"""Our tokens are under 60 characters; anything much longer is refused before parsing."""

NOT_FOUND = "no such link"
"""The one message of every refused click, whatever was wrong with it."""


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
        raise NotFoundError(NOT_FOUND)
    url = links[index]
    if not isinstance(url, str) or not url[:8].lower().startswith(("http://", "https://")):
        raise NotFoundError(NOT_FOUND)
    return url


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
