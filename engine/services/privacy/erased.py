"""Is this address one whose person was erased? The check every way in must make.

An erased person's address is kept only as a hash on the suppression list (reason
``erased``). Sending and enrolling already refuse any suppressed address; creating a
prospect (an API upsert, an import) must also refuse an erased one, or a stale CRM export
would bring back exactly the data the person asked us to delete.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store import Suppression, SuppressionReason
from engine.store.suppressions import email_hash

__all__ = ["erased_among", "erased_dates", "erased_on", "refusal"]


def erased_on(session: Session, email: str) -> datetime | None:
    """When the person with this address was erased, or None."""
    return session.scalar(
        select(Suppression.created_at).where(
            Suppression.for_address(email), Suppression.reason == SuppressionReason.ERASED
        )
    )


def erased_among(session: Session, emails: Iterable[str]) -> set[str]:
    """The addresses of ``emails`` that were erased (one query, for a batch import)."""
    by_hash = {email_hash(e): e for e in emails}
    found = session.scalars(
        select(Suppression.email_hash).where(
            Suppression.email_hash.in_(by_hash), Suppression.reason == SuppressionReason.ERASED
        )
    )
    return {by_hash[h] for h in found}


def erased_dates(session: Session, emails: Iterable[str]) -> dict[str, datetime]:
    """When each erased address of ``emails`` was erased (one query, for a batch import's
    refusals, which say when)."""
    by_hash = {email_hash(e): e for e in emails}
    found = session.execute(
        select(Suppression.email_hash, Suppression.created_at).where(
            Suppression.email_hash.in_(by_hash), Suppression.reason == SuppressionReason.ERASED
        )
    )
    return {by_hash[h]: at for h, at in found}


def refusal(email: str, when: datetime | None) -> str:
    """The one wording of the refusal, for the API, imports and the CLI."""
    on = f" on {when:%Y-%m-%d}" if when else ""
    return (
        f"{email} was erased{on} at the person's request (GDPR art. 17) and cannot be "
        "added again: delete it from the system that sent it"
    )
