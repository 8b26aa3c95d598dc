"""Remove the local outbox's copies of emails to, or about, one person (an erasure).

In laptop mode every email (nurture mail, handoff alerts, test sends) is kept as an
``.eml`` file in the outbox directory; those are personal data as much as the database
rows are. A file is the person's when it was addressed to them, is one of their messages
(its ``Message-ID``), is an alert about one of their handoffs (``X-Nurture-Handoff``), or
names their address anywhere in its decoded text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import cast

from engine.config import Settings

__all__ = ["forget_messages", "local_outbox"]


def local_outbox(settings: Settings) -> Path | None:
    """The directory emails are kept in instead of sent (no SMTP configured), if any."""
    return None if settings.smtp_url else Path(settings.outbox_dir)


def forget_messages(
    directory: Path | str,
    *,
    address: str,
    message_ids: Iterable[str] = (),
    handoff_ids: Iterable[int] = (),
) -> int:
    """Delete the matching ``.eml`` files; returns how many. OSError propagates."""
    folder = Path(directory)
    if not folder.is_dir():
        return 0
    needle = address.strip().lower()
    ids = {_bare(m) for m in message_ids}
    handoffs = {str(h) for h in handoff_ids}
    removed = 0
    for entry in os.scandir(folder):
        if not entry.name.endswith(".eml") or not entry.is_file():
            continue
        path = Path(entry.path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:  # removed meanwhile
            continue
        if _concerns(raw, needle, ids, handoffs):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>").lower()


def _concerns(raw: bytes, address: str, ids: set[str], handoffs: set[str]) -> bool:
    message = cast(EmailMessage, message_from_bytes(raw, policy=default_policy))
    if _bare(str(message.get("message-id", ""))) in ids:
        return True
    if str(message.get("x-nurture-handoff", "")).strip() in handoffs:
        return True
    for header in ("to", "cc", "bcc", "reply-to"):
        if address in str(message.get(header, "")).lower():
            return True
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        try:
            text = part.get_content()
        except (LookupError, ValueError):  # an unknown charset: fall back to the bytes
            text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
        if address in str(text).lower():
            return True
    return False
