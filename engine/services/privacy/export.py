"""Export everything held about a person (GDPR art. 15 access, art. 20 portability).

Every row of every table in ``coverage.PERSONAL_TABLES`` that concerns the person, every
column of it, as JSON; plus the score now and the names of the sequences they were in, so
the document reads on its own. A machine-readable, self-describing format: a tool can
re-import it, a person can read it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from engine.core.scoring import decayed
from engine.services.audit import record_audit
from engine.services.privacy.coverage import PERSONAL_TABLES, Person, PersonalTable
from engine.services.privacy.erased import erased_on
from engine.services.scoring import current_scoring
from engine.services.views.prospect_detail import load_prospect
from engine.spec.durations import format_duration
from engine.store import Enrollment, Prospect, Sequence, UnitOfWork

__all__ = ["EXPORT_FORMAT", "erased_record", "export_prospect"]

EXPORT_FORMAT = "nurture-personal-data/1"


def export_prospect(
    uow: UnitOfWork, prospect_id: int, now: datetime, *, actor: str
) -> dict[str, Any]:
    """The export document of one prospect; NotFoundError if unknown or erased.

    Handing out someone's personal data is itself worth a line in the audit log (who
    exported it, when), written with the export.
    """
    with uow:
        session = uow.session
        prospect = load_prospect(session, prospect_id)
        person = Person(prospect.id, prospect.email)
        record_audit(  # first, so the document lists its own making too
            session,
            actor=actor,
            action="prospect.exported",
            subject=f"prospect:{prospect_id}",
            summary=f"Exported everything held about prospect {prospect_id} (GDPR art. 15/20)",
            now=now,
        )
        session.flush()
        document: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "generated_at": now.isoformat(),
            "subject": {"prospect_id": prospect.id, "email": prospect.email},
        }
        for table in PERSONAL_TABLES:
            rows = _rows(session, table, person)
            if _single(table):  # one row or none: the prospect, their suppression
                document[table.section] = rows[0] if rows else None
            else:
                document[table.section] = rows
        document["sequences"] = _sequences(session, prospect.id)
        document["score"] = _score(session, prospect, now)
        uow.commit()
        return document


def erased_record(uow: UnitOfWork, email: str) -> datetime | None:
    """When the address was erased, if it was (all that is left of the person)."""
    with uow:
        return erased_on(uow.session, email)


def _single(table: PersonalTable) -> bool:
    return table.section in ("prospect", "suppression")


def _rows(session: Session, table: PersonalTable, person: Person) -> list[dict[str, Any]]:
    columns = [c.key for c in inspect(table.model).column_attrs]
    stmt = select(*(getattr(table.model, c) for c in columns)).where(table.rows(person))
    rows = session.execute(stmt.order_by(table.model.id)).all()
    return [{c: _json(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def _sequences(session: Session, prospect_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Sequence.id, Sequence.key, Sequence.name)
        .where(
            Sequence.id.in_(
                select(Enrollment.sequence_id).where(Enrollment.prospect_id == prospect_id)
            )
        )
        .order_by(Sequence.key)
    )
    return [{"id": i, "key": k, "name": n} for i, k, n in rows]


def _score(session: Session, prospect: Prospect, now: datetime) -> dict[str, Any] | None:
    spec = current_scoring(session)
    if spec is None:
        return None
    return {
        "now": round(decayed(prospect.score_value, prospect.score_as_of, spec.half_life, now), 4),
        "half_life": format_duration(spec.half_life),
        "threshold": spec.threshold,
        "explained": "the sum of score_entries, each halved every half_life since it happened",
    }


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):  # a received email, as it came (RFC 5322 is mostly ASCII)
        return value.decode("utf-8", "replace")
    return value
