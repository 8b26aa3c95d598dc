"""Read queries the web app's prospect list and sequence report will plausibly run, written
the way they must be to stay fast at a million rows (keyset pages, no OFFSET, no count of
everything). ``bench/scale.py`` times them and ``test_query_plans`` checks their plans.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from engine.store import Enrollment, EnrollmentStatus, Prospect

PAGE = 50
_COLUMNS = (Prospect.id, Prospect.email, Prospect.first_name, Prospect.company, Prospect.status)


def by_email_prefix(prefix: str, after: str | None = None) -> Select[Any]:
    """Prospects whose email starts with ``prefix``, by email, a page after ``after``.

    The range next to the ``LIKE`` is what lets the email's unique index serve it under any
    collation (PostgreSQL uses an index for ``LIKE 'x%'`` only under the C collation).
    """
    prefix = prefix.lower()
    stmt = select(*_COLUMNS).where(
        Prospect.email.startswith(prefix, autoescape=True),
        Prospect.email >= prefix,
        Prospect.email < prefix[:-1] + chr(ord(prefix[-1]) + 1),
    )
    if after is not None:
        stmt = stmt.where(Prospect.email > after)
    return stmt.order_by(Prospect.email).limit(PAGE)


def by_status(status: str, before_id: int | None = None) -> Select[Any]:
    """Prospects with ``status``, newest first, a page before ``before_id``."""
    stmt = select(*_COLUMNS).where(Prospect.status == status)
    if before_id is not None:
        stmt = stmt.where(Prospect.id < before_id)
    return stmt.order_by(Prospect.id.desc()).limit(PAGE)


def by_company(term: str, before_id: int | None = None) -> Select[Any]:
    """Prospects whose company contains ``term`` (any case), newest first."""
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    stmt = select(*_COLUMNS).where(func.lower(Prospect.company).like(f"%{escaped}%", escape="\\"))
    if before_id is not None:
        stmt = stmt.where(Prospect.id < before_id)
    return stmt.order_by(Prospect.id.desc()).limit(PAGE)


def step_counts(version_id: int) -> Select[Any]:
    """Active enrollments of one sequence version per step (cursor): the sequence report."""
    return (
        select(Enrollment.cursor, func.count())
        .where(
            Enrollment.sequence_version_id == version_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(Enrollment.cursor)
        .order_by(Enrollment.cursor)
    )
