"""Search prospects: filters, and keyset pagination that stays fast at a million rows.

Keyset, not OFFSET: page 2,000 of a million rows costs what page 1 costs (the database
seeks to the cursor through an index instead of counting past 100,000 rows), and a page
never repeats or skips a row when prospects arrive between two clicks. The order is
newest first (``id`` descending) or by email; both are unique, so a cursor is one value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from engine.core.scoring import decayed
from engine.exceptions import InvalidInputError
from engine.services.loading import spec_by_checksum
from engine.services.schemas import EMAIL
from engine.services.scoring import current_scoring
from engine.services.views.prospect_detail import person_name
from engine.services.views.prospect_filter import (
    NO_OWNER,
    ProspectFilter,
    Sort,
    decode_cursor,
    encode_cursor,
    parse_filter,
)
from engine.services.views.prospect_nurture import step_label
from engine.spec.catalog import STATUSES
from engine.spec.scoring import ScoringSpec
from engine.spec.sequence import SequenceSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Prospect,
    Sequence,
    SequenceVersion,
    UnitOfWork,
    User,
    UserRole,
)
from engine.store.prospects import (
    decayed_score,
    searchable_company,
    searchable_email,
    searchable_name,
)

__all__ = [
    "ProspectFilter",
    "ProspectRow",
    "SearchOptions",
    "SearchPage",
    "SearchView",
    "parse_filter",
    "search_options",
    "search_prospects",
    "search_view",
]

DEFAULT_HALF_LIFE = timedelta(days=21)


@dataclass(frozen=True)
class ProspectRow:
    id: int
    email: str
    name: str
    company: str | None
    status: str
    owner: str | None
    sequence_key: str | None
    sequence_name: str | None
    step: str | None
    score: float
    updated_at: datetime


@dataclass(frozen=True)
class SearchPage:
    rows: list[ProspectRow]
    filters: ProspectFilter
    next_cursor: str | None
    prev_cursor: str | None
    threshold: int | None  # the scoring threshold, to show scores against it


@dataclass(frozen=True)
class SearchOptions:
    """What the filter form offers: statuses, sequences and owners to choose from."""

    statuses: tuple[str, ...]
    sequences: tuple[tuple[str, str], ...]  # (key, name)
    owners: tuple[str, ...]  # sales users' addresses


def search_options(uow: UnitOfWork) -> SearchOptions:
    """The choices of the filter form: cheap lookups, never a scan of the prospects (a
    DISTINCT over a million statuses would be the slowest thing on the page)."""
    with uow:
        sequences = tuple(
            (key, name)
            for key, name in uow.session.execute(
                select(Sequence.key, Sequence.name).order_by(Sequence.name)
            )
        )
        owners = tuple(
            uow.session.scalars(
                select(User.email)
                .where(User.role == UserRole.SALES, User.active.is_(True))
                .order_by(User.email)
            )
        )
    return SearchOptions(STATUSES, sequences, owners)


@dataclass(frozen=True)
class SearchView:
    """Everything the search page shows: the page of results (None when the filters were
    refused), what the form offers, and the refusal in words."""

    page: SearchPage | None
    options: SearchOptions
    error: str | None = None


def search_view(
    uow_factory: Callable[[], UnitOfWork],
    params: dict[str, Any],
    now: datetime,
    *,
    owner_scope: str | None = None,
) -> SearchView:
    """The search page from its query string; a bad filter or cursor is reported, not
    raised, so the page can show it next to the form the person filled in."""
    options = search_options(uow_factory())
    try:
        page = search_prospects(uow_factory(), parse_filter(params), now, owner_scope=owner_scope)
    except InvalidInputError as exc:
        return SearchView(None, options, str(exc))
    return SearchView(page, options)


def search_prospects(
    uow: UnitOfWork, filters: ProspectFilter, now: datetime, *, owner_scope: str | None = None
) -> SearchPage:
    """One page of prospects matching ``filters``; erased prospects never appear.

    ``owner_scope`` restricts the search to one owner's prospects whatever the filters say
    (a sales rep sees their own leads only).
    """
    key = decode_cursor(filters.after or filters.before, filters.sort)
    with uow:
        session = uow.session
        spec = current_scoring(session)
        half_life = spec.half_life if spec else DEFAULT_HALF_LIFE
        stmt = select(Prospect).where(Prospect.erased_at.is_(None))
        stmt = _apply_filters(session, stmt, filters, now, half_life)
        if owner_scope is not None:
            stmt = stmt.where(Prospect.owner_email == owner_scope.strip().lower())
        backwards = filters.before is not None
        column = Prospect.id if filters.sort == "recent" else Prospect.email
        descending = (filters.sort == "recent") != backwards
        if key is not None:
            stmt = stmt.where(column < key if descending else column > key)
        stmt = stmt.order_by(column.desc() if descending else column.asc())
        found = list(session.scalars(stmt.limit(filters.limit + 1)))
        more = len(found) > filters.limit
        found = found[: filters.limit]
        if backwards:
            found.reverse()
        rows = _rows(session, found, spec, half_life, now)
    first, last = (
        (_cursor_value(rows[0], filters.sort), _cursor_value(rows[-1], filters.sort))
        if rows
        else (None, None)
    )
    if backwards:
        next_cursor = encode_cursor(filters.sort, last) if rows else None
        prev_cursor = encode_cursor(filters.sort, first) if more else None
    else:
        next_cursor = encode_cursor(filters.sort, last) if more else None
        prev_cursor = encode_cursor(filters.sort, first) if key is not None and rows else None
    return SearchPage(rows, filters, next_cursor, prev_cursor, spec.threshold if spec else None)


def _apply_filters(
    session: Session,
    stmt: Select[tuple[Prospect]],
    filters: ProspectFilter,
    now: datetime,
    half_life: timedelta,
) -> Select[tuple[Prospect]]:
    if filters.email and EMAIL.match(filters.email.lower()):
        # A whole address is a lookup of one person: the unique index, not a substring scan.
        stmt = stmt.where(Prospect.email == filters.email.lower())
    elif filters.email:
        stmt = stmt.where(_contains(searchable_email(), filters.email))
    if filters.name:
        stmt = stmt.where(_contains(searchable_name(), " ".join(filters.name.split())))
    if filters.company:
        stmt = stmt.where(_contains(searchable_company(), filters.company))
    if filters.status:
        stmt = stmt.where(Prospect.status == filters.status)
    if filters.owner == NO_OWNER:
        stmt = stmt.where(Prospect.owner_email.is_(None))
    elif filters.owner:
        stmt = stmt.where(Prospect.owner_email == filters.owner)
    if filters.sequence:
        sequence_id = session.scalar(select(Sequence.id).where(Sequence.key == filters.sequence))
        if sequence_id is None:
            raise InvalidInputError(f"sequence: no sequence with the key {filters.sequence!r}")
        stmt = stmt.where(
            Prospect.id.in_(
                select(Enrollment.prospect_id).where(
                    Enrollment.sequence_id == sequence_id,
                    Enrollment.status == EnrollmentStatus.ACTIVE,
                )
            )
        )
    if filters.score_range:
        stmt = _score_between(stmt, filters.score_min, filters.score_max, now, half_life)
    return stmt


def _score_between(
    stmt: Select[tuple[Prospect]],
    low: float | None,
    high: float | None,
    now: datetime,
    half_life: timedelta,
) -> Select[tuple[Prospect]]:
    """The decayed score now within [low, high].

    Decay only shrinks a score towards zero, so a score above a positive ``low`` now was
    above it when cached: ``score_value >= low`` narrows through the index first, and
    the exact decayed comparison runs on what is left.
    """
    score = decayed_score(now, half_life)
    if low is not None:
        stmt = stmt.where(score >= low)
        if low > 0:
            stmt = stmt.where(Prospect.score_value >= low)
    if high is not None:
        stmt = stmt.where(score <= high)
        if high < 0:
            stmt = stmt.where(Prospect.score_value <= high)
    return stmt


def _contains(expression: ColumnElement[str], term: str) -> ColumnElement[bool]:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return expression.like(f"%{escaped}%", escape="\\")


def _rows(
    session: Session,
    prospects: list[Prospect],
    spec: ScoringSpec | None,
    half_life: timedelta,
    now: datetime,
) -> list[ProspectRow]:
    """The page's rows with their current sequence and step: one more query per page (and
    one per sequence version whose spec this process has not parsed yet)."""
    ids = [p.id for p in prospects]
    active: dict[int, tuple[str, str, str | None]] = {}
    specs: dict[int, SequenceSpec] = {}
    if ids:
        for prospect_id, version_id, checksum, cursor, key, name in session.execute(
            select(
                Enrollment.prospect_id,
                Enrollment.sequence_version_id,
                SequenceVersion.checksum,
                Enrollment.cursor,
                Sequence.key,
                Sequence.name,
            )
            .join(Sequence, Sequence.id == Enrollment.sequence_id)
            .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
            .where(Enrollment.prospect_id.in_(ids), Enrollment.status == EnrollmentStatus.ACTIVE)
        ):
            if version_id not in specs:
                specs[version_id] = spec_by_checksum(session, version_id, checksum)
            active[prospect_id] = (key, name, step_label(specs[version_id], cursor))
    rows = []
    for p in prospects:
        key, name, step = active.get(p.id, (None, None, None))
        rows.append(
            ProspectRow(
                id=p.id,
                email=p.email,
                name=person_name(p.first_name, p.last_name),
                company=p.company,
                status=p.status,
                owner=p.owner_email,
                sequence_key=key,
                sequence_name=name,
                step=step,
                score=decayed(p.score_value, p.score_as_of, half_life, now) if spec else 0.0,
                updated_at=p.updated_at,
            )
        )
    return rows


def _cursor_value(row: ProspectRow, sort: Sort) -> str:
    return str(row.id) if sort == "recent" else row.email
