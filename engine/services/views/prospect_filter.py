"""What a prospect search asks for: the filters of the search form and its page cursors.

Validated like every input from outside (``engine.services.schemas``): a bad value is an
``InvalidInputError`` naming the field, never a query that fails. Cursors are opaque to
people but plain to us (``base64("recent:4242")``), and a mangled one is refused with a
message rather than silently showing the first page.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.exceptions import InvalidInputError
from engine.services.schemas import EMAIL, parse_input
from engine.services.validation import line_field

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "NO_OWNER",
    "ProspectFilter",
    "Sort",
    "decode_cursor",
    "encode_cursor",
    "parse_filter",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
NO_OWNER = "none"
SCORE_BOUND = 1_000_000.0

Sort = Literal["recent", "email"]


class ProspectFilter(BaseModel):
    """What a marketer can ask for; every field optional, all given ones must match.

    Text filters match anywhere in the field, ignoring case; ``owner`` is an exact email
    (or ``none`` for prospects nobody owns); the score range is the decayed score now.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    email: line_field(320, description="Part of the email.") | None = None
    name: line_field(200, description="Part of 'first last'.") | None = None
    company: line_field(200, description="Part of the company.") | None = None
    status: str | None = Field(None, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    sequence: line_field(100, description="Key of a sequence they are in now.") | None = None
    owner: line_field(320, description="Owner's email, or 'none'.") | None = None
    score_min: float | None = Field(None, ge=-SCORE_BOUND, le=SCORE_BOUND)
    score_max: float | None = Field(None, ge=-SCORE_BOUND, le=SCORE_BOUND)
    sort: Sort = "recent"
    after: line_field(700, description="Cursor: the page after.") | None = None
    before: line_field(700, description="Cursor: the page before.") | None = None
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


def parse_filter(params: dict[str, Any]) -> ProspectFilter:
    """Validate query-string parameters (InvalidInputError names each bad one)."""
    return parse_input(ProspectFilter, params)


def encode_cursor(sort: Sort, value: str | None) -> str | None:
    if value is None:
        return None
    raw = f"{sort}:{value}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, sort: Sort) -> int | str | None:
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
