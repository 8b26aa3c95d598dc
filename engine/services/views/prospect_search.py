"""Search prospects: filters, and keyset pagination that stays fast at a million rows.

Keyset, not OFFSET: page 2,000 of a million rows costs what page 1 costs (the database
seeks to the cursor through an index instead of counting past 100,000 rows), and a page
never repeats or skips a row when prospects arrive between two clicks. The order is
newest first (``id`` descending) or by email; both are unique, so a cursor is one value.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from engine.core.scoring import decayed
from engine.exceptions import InvalidInputError
from engine.services.loading import spec_by_id
from engine.services.schemas import EMAIL, parse_input
from engine.services.scoring import current_scoring
from engine.spec.scoring import ScoringSpec
from engine.store import Enrollment, EnrollmentStatus, Prospect, Sequence, UnitOfWork
from engine.store.prospects import (
    decayed_score,
    searchable_company,
    searchable_email,
    searchable_name,
)

__all__ = ["ProspectFilter", "ProspectRow", "SearchPage", "search_prospects"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
NO_OWNER = "none"
SCORE_BOUND = 1_000_000.0
DEFAULT_HALF_LIFE = timedelta(days=21)

Sort = Literal["recent", "email"]


class ProspectFilter(BaseModel):
    """What a marketer can ask for; every field optional, all given ones must match.

    Text filters match anywhere in the field, ignoring case; ``owner`` is an exact email
    (or ``none`` for prospects nobody owns); the score range is the decayed score now.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    email: str | None = Field(None, max_length=320, description="Part of the email.")
    name: str | None = Field(None, max_length=200, description="Part of 'first last'.")
    company: str | None = Field(None, max_length=200, description="Part of the company.")
    status: str | None = Field(None, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    sequence: str | None = Field(
        None, max_length=100, description="Key of a sequence they are in now."
    )
    owner: str | None = Field(None, max_length=320, description="Owner's email, or 'none'.")
    score_min: float | None = Field(None, ge=-SCORE_BOUND, le=SCORE_BOUND)
    score_max: float | None = Field(None, ge=-SCORE_BOUND, le=SCORE_BOUND)
    sort: Sort = "recent"
    after: str | None = Field(None, max_length=700, description="Cursor: the page after.")
    before: str | None = Field(None, max_length=700, description="Cursor: the page before.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        """An HTML form sends every field, empty ones as ""."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        if value != NO_OWNER and not EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address (or 'none' for no owner)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProspectFilter:
        low, high = self.score_min, self.score_max
        if low is not None and high is not None and low > high:
            raise ValueError(f"score_min ({low:g}) is above score_max ({high:g})")
        if self.after and self.before:
            raise ValueError("give 'after' or 'before', not both")
        return self

    def page(self, **changes: Any) -> dict[str, Any]:
        """The query string of another page of the same search (cursors replaced)."""
        values = self.model_dump(exclude_none=True, exclude={"after", "before"})
        if values.get("sort") == "recent":
            del values["sort"]
        if values.get("limit") == DEFAULT_LIMIT:
            del values["limit"]
        values.update({k: v for k, v in changes.items() if v is not None})
        return values

    @property
    def filtered(self) -> bool:
        names = ("email", "name", "company", "status", "sequence", "owner")
        return any(getattr(self, n) is not None for n in names) or self.score_range

    @property
    def score_range(self) -> bool:
        return self.score_min is not None or self.score_max is not None


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


def parse_filter(params: dict[str, Any]) -> ProspectFilter:
    """Validate query-string parameters (InvalidInputError names each bad one)."""
    return parse_input(ProspectFilter, params)


def search_prospects(
    uow: UnitOfWork, filters: ProspectFilter, now: datetime, *, owner_scope: str | None = None
) -> SearchPage:
    """One page of prospects matching ``filters``; erased prospects never appear.

    ``owner_scope`` restricts the search to one owner's prospects whatever the filters say
    (a sales rep sees their own leads only).
    """
    key = _decode(filters.after or filters.before, filters.sort)
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
        next_cursor = _encode(filters.sort, last) if rows else None
        prev_cursor = _encode(filters.sort, first) if more else None
    else:
        next_cursor = _encode(filters.sort, last) if more else None
        prev_cursor = _encode(filters.sort, first) if key is not None and rows else None
    return SearchPage(rows, filters, next_cursor, prev_cursor, spec.threshold if spec else None)


def _apply_filters(
    session: Session,
    stmt: Select[tuple[Prospect]],
    filters: ProspectFilter,
    now: datetime,
    half_life: timedelta,
) -> Select[tuple[Prospect]]:
    if filters.email:
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
    """The page's rows with their current sequence and step: one more query per page."""
    ids = [p.id for p in prospects]
    active: dict[int, tuple[str, str, str | None]] = {}
    if ids:
        for prospect_id, version_id, cursor, key, name in session.execute(
            select(
                Enrollment.prospect_id,
                Enrollment.sequence_version_id,
                Enrollment.cursor,
                Sequence.key,
                Sequence.name,
            )
            .join(Sequence, Sequence.id == Enrollment.sequence_id)
            .where(Enrollment.prospect_id.in_(ids), Enrollment.status == EnrollmentStatus.ACTIVE)
        ):
            steps = spec_by_id(session, version_id).step_ids()
            active[prospect_id] = (key, name, steps[cursor] if cursor < len(steps) else None)
    rows = []
    for p in prospects:
        key, name, step = active.get(p.id, (None, None, None))
        rows.append(
            ProspectRow(
                id=p.id,
                email=p.email,
                name=" ".join(part for part in (p.first_name, p.last_name) if part),
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


def _encode(sort: Sort, value: str | None) -> str | None:
    if value is None:
        return None
    raw = f"{sort}:{value}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(cursor: str | None, sort: Sort) -> int | str | None:
    """The key a cursor stands for; a cursor from another sort order or a mangled one is
    refused with a clear message rather than silently showing the first page."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        kind, _, value = raw.partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInputError(
            "cursor: not a page cursor; start again from the first page"
        ) from None
    if kind not in ("recent", "email") or not value:
        raise InvalidInputError("cursor: not a page cursor; start again from the first page")
    if kind != sort:
        raise InvalidInputError(
            f"cursor: it belongs to another sort order ({kind}, not {sort}); "
            "start again from the first page"
        )
    if sort == "recent":
        if not value.isdigit():
            raise InvalidInputError("cursor: not a page cursor; start again from the first page")
        return int(value)
    return value
