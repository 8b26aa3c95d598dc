"""Validated inputs of the services: what the API, the pages, the CLI and imports may hand in.

Validation lives here, not in routes, so a CSV import, a JSON API call and the sales
decision page are held to the same rules (``engine.services.validation``) and produce the
same messages. The OpenAPI document is generated from these models, so it cannot promise
what the server refuses, nor leave out what it checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from engine.exceptions import InvalidInputError, Problem
from engine.services.validation import (
    LINE_PATTERN,
    MAX_KEY_LENGTH,
    Id,
    JsonObject,
    Moment,
    check_line,
    line_field,
    refuse_surrogates,
    text_field,
)
from engine.spec.catalog import EVENT_TYPES, suggest
from engine.spec.send_window import check_timezone
from engine.store.enums import HandoffStatus

__all__ = [
    "COMMENT_LENGTH",
    "EMAIL",
    "ENGINE_DATA_KEYS",
    "ENGINE_SOURCES",
    "REJECT_REASONS",
    "REJECT_REASON_LABELS",
    "AcceptInput",
    "EngineEventInput",
    "EventInput",
    "HandoffQuery",
    "ProspectInput",
    "RejectInput",
    "parse_input",
    "problems_of",
    "summary",
]

InputT = TypeVar("InputT", bound=BaseModel)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMAIL_PART = "[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+"
EMAIL_PATTERN = f"^{_EMAIL_PART}@{_EMAIL_PART}[.]{_EMAIL_PART}$"
EMAIL_LENGTH = 320

ENGINE_SOURCES = frozenset(
    {"tracking", "nurture", "smtp", "one-click", "unsubscribe-page", "inbound", "engine", "ui"}
)
"""Sources only the engine itself records events under. The bot filter trusts what these
events say about machines and honeypots; an API client claiming one could discredit a
person's real clicks."""
ENGINE_DATA_KEYS = frozenset({"honeypot", "link_index"})
"""Keys of event ``data`` that only the tracking endpoints write, for the same reason."""

IDEMPOTENCY_KEY_LENGTH = 200
REJECT_REASONS = ("not_ready", "wrong_person", "no_budget", "bad_data", "unreachable", "other")
REJECT_REASON_LABELS = {
    "not_ready": "Not ready yet",
    "wrong_person": "Wrong person",
    "no_budget": "No budget",
    "bad_data": "Bad data",
    "unreachable": "Unreachable after the agreed attempts",
    "other": "Other (say why)",
}
"""What the sales pages and the marketers' reports call each reason."""
COMMENT_LENGTH = 2_000


def _email(value: str) -> str:
    value = check_line(value).strip().lower()
    if not EMAIL.match(value):
        raise ValueError(f"{value[:80]!r} is not an email address")
    return value


Email = Annotated[
    str,
    Field(max_length=EMAIL_LENGTH, json_schema_extra={"pattern": EMAIL_PATTERN}),
    BeforeValidator(refuse_surrogates),
    AfterValidator(_email),
]


def _zone(value: str) -> str:
    return check_timezone(check_line(value)) if value else value


Timezone = Annotated[
    str,
    Field(max_length=64, description="IANA zone, e.g. 'Europe/Berlin'."),
    BeforeValidator(refuse_surrogates),
    AfterValidator(_zone),
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProspectInput(_Input):
    """A prospect as a CRM or import sends it; omitted fields are left unchanged."""

    email: Email = Field(description="Identity of the prospect (upsert key).")
    first_name: line_field(200) | None = None
    last_name: line_field(200) | None = None
    company: line_field(200) | None = None
    title: line_field(200) | None = None
    country: line_field(100) | None = None
    timezone: Timezone | None = Field(
        None, description="IANA zone, e.g. 'Europe/Berlin' (empty clears it)."
    )
    status: line_field(50, pattern=r"^[a-z][a-z0-9_]*$") | None = None
    lost_reason: line_field(100) | None = None
    lost_at: Moment | None = None
    deal_size: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    owner: Email | None = Field(None, description="Owner's email (a sales user or CRM owner).")
    source: line_field(100) | None = None
    attributes: JsonObject | None = Field(None, description="Custom fields, merged.")

    @field_validator("timezone")
    @classmethod
    def _no_zone(cls, v: str | None) -> str | None:
        return v or None


class _EventFields(_Input):
    """What every event carries, from a client or from the engine's own endpoints."""

    type: str = Field(
        description="Event type, e.g. 'page.visited'.",
        json_schema_extra={"enum": sorted(EVENT_TYPES)},
    )
    prospect_id: Id | None = Field(None, description="The prospect, by id ...")
    email: Email | None = Field(None, description="... or by email.")
    occurred_at: Moment | None = Field(None, description="When it happened (default now).")
    data: JsonObject = Field(default_factory=dict, description="Type-specific details.")
    idempotency_key: line_field(IDEMPOTENCY_KEY_LENGTH, min_length=1) | None = Field(
        None,
        description="Retries with the same key (per API token) record the event once; the "
        "same key with a different event is a 409.",
    )
    message_id: Id | None = Field(
        None, description="Our outbox message it refers to (one sent to this prospect)."
    )

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(
                f"unknown event type {v[:80]!r}{suggest(v, EVENT_TYPES)}; "
                f"known: {', '.join(sorted(EVENT_TYPES))}"
            )
        return v


def _engine_owned(field: str, why: str) -> Any:
    """A field the public input names only to refuse it with a reason (absent from the
    OpenAPI document)."""

    def refuse(value: Any) -> Any:
        raise ValueError(f"{why}; leave '{field}' out")

    return Annotated[SkipJsonSchema[Any], Field(None, exclude=True), AfterValidator(refuse)]


_NAMES_PROSPECT = {
    "anyOf": [
        {"required": ["prospect_id"], "properties": {"prospect_id": {"type": "integer"}}},
        {"required": ["email"], "properties": {"email": {"type": "string"}}},
    ]
}


class EventInput(_EventFields):
    """One event as an API client or an import sends it.

    The engine's own verdicts are not part of it: whether a click was a machine's, and the
    tracking and honeypot evidence behind that, come only from the tracking endpoints
    (``EngineEventInput``). A client naming them is told so, field by field.
    """

    source: line_field(64) | None = Field(
        None,
        description="Where the event came from (e.g. 'website'); the engine's own sources "
        f"({', '.join(sorted(ENGINE_SOURCES))}) are refused.",
        json_schema_extra={"not": {"enum": sorted(ENGINE_SOURCES)}},
    )
    data: JsonObject = Field(
        default_factory=dict,
        description="Type-specific details.",
        json_schema_extra={
            "propertyNames": {
                "maxLength": MAX_KEY_LENGTH,
                "pattern": LINE_PATTERN,
                "not": {"enum": sorted(ENGINE_DATA_KEYS)},
            }
        },
    )
    machine: _engine_owned("machine", "the engine decides whether an event was a machine's")
    machine_reason: _engine_owned(
        "machine_reason", "the engine decides whether an event was a machine's"
    )

    model_config = ConfigDict(json_schema_extra=_NAMES_PROSPECT)

    @field_validator("source")
    @classmethod
    def _client_source(cls, v: str | None) -> str | None:
        if v is not None and v.lower() in ENGINE_SOURCES:
            raise ValueError(f"{v!r} is the engine's own source; name your system instead")
        return v

    @field_validator("data")
    @classmethod
    def _client_data(cls, v: dict[str, Any]) -> dict[str, Any]:
        claimed = sorted(ENGINE_DATA_KEYS & set(v))
        if claimed:
            raise ValueError(
                f"{', '.join(map(repr, claimed))} is written by the engine's tracking "
                "endpoints only; leave it out"
            )
        return v


class EngineEventInput(_EventFields):
    """An event the engine records itself (tracking, unsubscribe, inbound mail): the same
    limits, plus the verdicts that only the engine may give."""

    source: line_field(64) | None = None
    machine: bool = Field(False, description="Known to be a machine event.")
    machine_reason: line_field(200) | None = None


class AcceptInput(_Input):
    """Sales takes the lead (API body, or the decision page's form)."""

    comment: text_field(COMMENT_LENGTH) | None = Field(
        None, description="What the rep wants marketing to know."
    )


class RejectInput(_Input):
    """Sales sends the lead back to nurture, with a reason."""

    reason: str = Field(
        description="Why sales sends the prospect back ('other' needs a comment).",
        json_schema_extra={"enum": list(REJECT_REASONS)},
    )
    comment: text_field(COMMENT_LENGTH) | None = Field(
        None, description="Free text.", validate_default=True
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if v not in REJECT_REASONS:
            raise ValueError(f"must be one of {', '.join(REJECT_REASONS)}, not {v[:80]!r}")
        return v

    @field_validator("comment")
    @classmethod
    def _why(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("reason") == "other" and not v:
            raise ValueError("reason 'other' needs a comment saying why")
        return v or None

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "if": {"properties": {"reason": {"const": "other"}}},
            "then": {
                "required": ["comment"],
                "properties": {"comment": {"type": "string", "pattern": "\\S"}},
            },
        },
    )


class HandoffQuery(_Input):
    """The query string of the sales inbox listing."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    status: Literal[tuple(s.value for s in HandoffStatus)] | None = None  # type: ignore[valid-type]
    owner: Email | None = Field(None, description="Owner's email.")
    limit: int = Field(100, ge=1, le=1_000, description="At most this many, newest first.")


def problems_of(exc: ValidationError) -> list[Problem]:
    """Every problem pydantic found, as ``(dotted field, message)``: the one wording shared
    by API answers, import reports and page messages."""
    problems: list[Problem] = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or None
        problems.append((where, str(err["msg"]).removeprefix("Value error, ")))
    return problems


def summary(problems: list[Problem]) -> str:
    """One line naming every problem."""
    return "; ".join(f"{field}: {message}" if field else message for field, message in problems)


def parse_input(model: type[InputT], payload: Any) -> InputT:
    """Validate ``payload`` or raise InvalidInputError listing every problem by field."""
    if not isinstance(payload, Mapping):
        message = f"expected a JSON object, not {type(payload).__name__}"
        raise InvalidInputError(message, problems=[(None, message)])
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = problems_of(exc)
        raise InvalidInputError(summary(problems), problems=problems) from None
