"""The audit log: who changed what, when.

Every service that changes something a person would later ask about (a sequence or
template version, a pause, an import, a suppression, an erasure, a user or token) calls
``record_audit`` with its own session, *inside its own transaction*: the entry commits with
the change or not at all, so the log can neither miss a change nor claim one that rolled
back. Reading is ``list_audit`` (the admin's log page) and nothing else.

Actors are strings, so people, API clients and the command line fit one column:
``ana@example.com`` (a signed-in user), ``token:crm-sync`` (an API client; see
``api_actor``), ``cli`` (the ``nurture`` command), ``system`` (the engine on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exceptions import InvalidInputError
from engine.store import AuditEntry, UnitOfWork

__all__ = [
    "CLI_ACTOR",
    "SYSTEM_ACTOR",
    "AuditView",
    "api_actor",
    "list_audit",
    "record_audit",
]

CLI_ACTOR = "cli"
SYSTEM_ACTOR = "system"
SUMMARY_LENGTH = 500
MAX_PAGE = 500


def api_actor(token_name: str) -> str:
    """The actor string for an API client authenticated by the token named ``token_name``."""
    return f"token:{token_name}"


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    summary: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the caller's open transaction (no flush, no commit: the caller's).

    ``action`` is a dotted verb (``sequence.published``, ``user.created``), ``subject``
    names what was acted on as ``kind:id`` (``sequence:lost-on-price``, ``user:7``), and
    ``summary`` is the sentence the log page shows. ``details`` holds the rest as JSON and
    must never carry a secret (a password, a token) or, for an erasure, the erased data.
    """
    if not actor or not action or not subject:
        raise InvalidInputError("an audit entry needs an actor, an action and a subject")
    text = summary.strip()
    if len(text) > SUMMARY_LENGTH:
        text = text[: SUMMARY_LENGTH - 1] + "…"
    session.add(
        AuditEntry(
            at=now,
            actor=actor[:320],
            action=action[:64],
            subject=subject[:200],
            summary=text,
            details=details or {},
        )
    )


@dataclass(frozen=True)
class AuditView:
    """An entry as the log page shows it."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    summary: str
    details: dict[str, Any]


def list_audit(
    uow: UnitOfWork,
    *,
    limit: int = 100,
    before_id: int | None = None,
    subject: str | None = None,
    action_prefix: str | None = None,
) -> list[AuditView]:
    """Newest entries first, ``limit`` at a time (keyset: pass the last id as ``before_id``).

    ``subject`` filters to one thing (``sequence:lost-on-price``); ``action_prefix`` to a
    kind of change (``sequence.`` for every sequence action).
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    if subject:
        stmt = stmt.where(AuditEntry.subject == subject)
    if action_prefix:
        escaped = action_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(AuditEntry.action.like(f"{escaped}%", escape="\\"))
    with uow:
        return [
            AuditView(e.id, e.at, e.actor, e.action, e.subject, e.summary, dict(e.details or {}))
            for e in uow.session.scalars(stmt)
        ]
