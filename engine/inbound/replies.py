"""A reply's own first lines: quoted history, signatures and disclaimers stripped.

What sales reads in the handoff ("Sounds good, send me pricing for 50 seats") must be
what the prospect wrote, not our email quoted back. ``mail-parser-reply`` knows how Gmail,
Outlook, Apple Mail and Thunderbird introduce quoted text and signatures, in a dozen
languages; this module only bounds its input and trims its output.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser

__all__ = ["EXCERPT_CHARS", "EXCERPT_LINES", "excerpt", "is_unsubscribe_request"]

EXCERPT_LINES = 5
EXCERPT_CHARS = 500
_PARSER_INPUT = 20_000  # its expressions scan to the end: keep hostile input short
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs"]
_UNSUBSCRIBE = re.compile(
    r"(please\s+)?(unsubscribe( me)?|remove me( from (your|this) (list|mailing list))?"
    r"|take me off (your|this) list|stop|opt[ -]?out|abmelden|austragen|désinscrire"
    r"|desinscribir|darse de baja)[.!]*",
    re.IGNORECASE,
)


def excerpt(text: str) -> str:
    """At most ``EXCERPT_LINES`` non-blank lines (``EXCERPT_CHARS`` characters) of the
    newest part of ``text``; ``""`` when nothing of the reply's own is left."""
    text = text[:_PARSER_INPUT]
    try:
        parsed = EmailReplyParser(languages=list(_LANGUAGES)).read(text)
        latest = parsed.replies[0].body if parsed.replies else text
    except Exception:  # a parser bug must not lose the reply: fall back to the raw text
        latest = text
    lines = [
        " ".join(line.split())
        for line in latest.splitlines()
        if line.strip() and not line.lstrip().startswith(">")
    ]
    joined = "\n".join(lines[:EXCERPT_LINES])
    if len(joined) > EXCERPT_CHARS:
        joined = joined[: EXCERPT_CHARS - 1].rstrip() + "…"
    return joined


def is_unsubscribe_request(subject: str, reply: str) -> bool:
    """A reply that says nothing but "unsubscribe" (or "remove me", "stop", ...), in its
    subject or as its whole text: honoured like the List-Unsubscribe mailto."""
    subject = re.sub(r"^((re|aw|sv|antw|réf|rif)\s*:\s*)+", "", subject.strip(), flags=re.I)
    return bool(_UNSUBSCRIBE.fullmatch(subject.strip()) or _UNSUBSCRIBE.fullmatch(reply.strip()))
