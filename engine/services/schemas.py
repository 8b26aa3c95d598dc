"""Validated inputs of the services: what the API, the CLI and imports may hand in.

Validation lives here, not in routes, so a CSV import and a JSON API call are held to the
same rules and produce the same messages.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.exceptions import InvalidInputError
from engine.spec.catalog import EVENT_TYPES, suggest
from engine.spec.sequence import check_timezone

InputT = TypeVar("InputT", bound=BaseModel)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProspectInput(_Input):
    """A prospect as a CRM or import sends it; omitted fields are left unchanged."""

    email: str = Field(description="Identity of the prospect (upsert key).")
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    company: str | None = Field(None, max_length=200)
    title: str | None = Field(None, max_length=200)
    country: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, description="IANA zone, e.g. 'Europe/Berlin'.")
    status: str | None = Field(None, max_length=50, pattern=r"^[a-z][a-z0-9_]*$")
    lost_reason: str | None = Field(None, max_length=100)
    lost_at: datetime | None = None
    deal_size: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    owner: str | None = Field(None, description="Owner's email (a sales user or CRM owner).")
    source: str | None = Field(None, max_length=100)
    attributes: dict[str, Any] | None = Field(None, description="Custom fields, merged.")

    @field_validator("email", "owner")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().lower()
        if not EMAIL.match(v) or len(v) > 320:
            raise ValueError(f"{v!r} is not an email address")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        return check_timezone(v)

    @field_validator("lost_at", mode="before")
    @classmethod
    def _moment(cls, v: Any) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime(v.year, v.month, v.day, tzinfo=UTC)
        return v

    @field_validator("lost_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v if v is None or v.tzinfo else v.replace(tzinfo=UTC)


class EventInput(_Input):
    """One event from outside (or from our own tracking endpoints)."""

    type: str = Field(description="Event type, e.g. 'page.visited'.")
    prospect_id: int | None = Field(None, description="The prospect, by id ...")
    email: str | None = Field(None, description="... or by email.")
    occurred_at: datetime | None = Field(None, description="When it happened (default now).")
    data: dict[str, Any] = Field(default_factory=dict, description="Type-specific details.")
    idempotency_key: str | None = Field(None, max_length=200)
    message_id: int | None = Field(None, description="Our outbox message it refers to.")
    source: str | None = Field(None, max_length=64)
    machine: bool = Field(False, description="Already known to be a machine event.")
    machine_reason: str | None = Field(None, max_length=200)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(
                f"unknown event type {v!r}{suggest(v, EVENT_TYPES)}; "
                f"known: {', '.join(sorted(EVENT_TYPES))}"
            )
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return None if v is None else v.strip().lower()

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v if v is None or v.tzinfo else v.replace(tzinfo=UTC)


def parse_input(model: type[InputT], payload: Any) -> InputT:
    """Validate ``payload`` or raise InvalidInputError listing every problem by field."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "body"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise InvalidInputError("; ".join(problems)) from None
