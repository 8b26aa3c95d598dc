"""Conditions: the one boolean language used by enrollment, exits, branches and waits.

A condition is a field comparison, an event test, or ``all``/``any``/``not`` of conditions.
Every model forbids unknown keys so that a typo is an error, not a rule that never fires.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from engine.spec.catalog import EVENT_TYPES, check_event_type, check_field, suggest
from engine.spec.durations import Duration
from engine.spec.errors import SpecValueError

Scalar = str | int | float | bool | date | datetime | None
FIELD_OPERATORS = ("eq", "ne", "in", "not_in", "exists", "gt", "lt", "gte", "lte")
# What people write instead of an operator, for a better "did you mean".
_OPERATOR_SYNONYMS = {
    "equals": "eq",
    "is": "eq",
    "is_not": "ne",
    "not_equals": "ne",
    "one_of": "in",
    "none_of": "not_in",
    "greater_than": "gt",
    "less_than": "lt",
}


class SpecModel(BaseModel):
    """Base for every spec model: strict about keys, immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldCondition(SpecModel):
    """Compare one prospect field; exactly one operator per condition."""

    field: str = Field(description="Prospect field, e.g. 'status' or 'attributes.industry'.")
    eq: Scalar = Field(None, description="Field equals this value.")
    ne: Scalar = Field(None, description="Field differs from this value.")
    in_: list[Scalar] | None = Field(None, alias="in", description="Field is one of these.")
    not_in: list[Scalar] | None = Field(None, description="Field is none of these.")
    exists: bool | None = Field(None, description="Field is set (true) or empty (false).")
    gt: float | datetime | date | None = Field(None, description="Greater than (number/date).")
    lt: float | datetime | date | None = Field(None, description="Less than (number/date).")
    gte: float | datetime | date | None = Field(None, description="At least (number/date).")
    lte: float | datetime | date | None = Field(None, description="At most (number/date).")

    _check_field = field_validator("field")(classmethod(lambda cls, v: check_field(v)))

    @model_validator(mode="before")
    @classmethod
    def _one_operator(cls, data: Any) -> Any:
        if isinstance(data, dict):
            ops = [k for k in data if k in FIELD_OPERATORS or k == "in_"]
            unknown = [k for k in data if k not in FIELD_OPERATORS and k not in ("field", "in_")]
            if not ops and unknown:
                # A misspelt operator ('equals', 'in_list') is the likely cause: name it.
                key = unknown[0]
                synonym = _OPERATOR_SYNONYMS.get(str(key).lower())
                hint = (
                    f" (did you mean {synonym!r}?)"
                    if synonym
                    else suggest(str(key), FIELD_OPERATORS)
                )
                raise SpecValueError(
                    f"unknown operator {key!r}{hint}; "
                    f"a field condition takes one of: {', '.join(FIELD_OPERATORS)}",
                    at=(key,),
                )
            if len(ops) != 1:
                raise SpecValueError(
                    f"a field condition needs exactly one operator ({', '.join(FIELD_OPERATORS)})"
                    f", got {', '.join(ops) if ops else 'none'}"
                    + (": split it into several conditions under 'all'" if ops else ""),
                    at=(ops[1],) if len(ops) > 1 else (),
                )
            if ops[0] in ("eq", "ne") and data[ops[0]] is None:
                raise SpecValueError(
                    f"'{ops[0]}: null' is ambiguous: write 'exists: false' (or true) instead",
                    at=(ops[0],),
                )
        return data

    @cached_property  # asked for every prospect an import or a tick judges
    def operator(self) -> str:
        for op in FIELD_OPERATORS:
            attr = "in_" if op == "in" else op
            if op in self.model_fields_set or attr in self.model_fields_set:
                return op
        raise AssertionError("validated FieldCondition without an operator")

    @cached_property
    def operand(self) -> Any:
        op = self.operator
        return getattr(self, "in_" if op == "in" else op)


class EventCondition(SpecModel):
    """True when the prospect has a matching (human, non-machine) event in the window.

    Without ``since`` or ``within`` the window is the current enrollment, so a reply from
    last year cannot end a nurture that starts today.
    """

    event: str = Field(description="Event type, e.g. 'email.clicked'.")
    since: str | None = Field(None, description="Count only events after this step last ran.")
    within: Duration | None = Field(None, description="Count only events this recent.")  # type: ignore[valid-type]
    min_count: int = Field(1, ge=1, description="How many matching events are needed.")
    where: dict[str, str] = Field(
        default_factory=dict,
        description="Filters on the event's data; values may use * and ? wildcards.",
    )

    _check_event = field_validator("event")(classmethod(lambda cls, v: check_event_type(v)))

    @model_validator(mode="before")
    @classmethod
    def _filters(cls, data: Any) -> Any:
        """Accept filters written inline (``path: "/pricing*"``), as the design shows."""
        if not isinstance(data, dict):
            return data
        own = {f.alias or name for name, f in cls.model_fields.items()}
        extra = {k: v for k, v in data.items() if k not in own}
        if not extra:
            return data
        event = data.get("event")
        if not isinstance(event, str) or event not in EVENT_TYPES:
            # The event itself is wrong: let its own validator say so (with a suggestion)
            # rather than blaming filters that may be fine for the intended event.
            return {k: v for k, v in data.items() if k in own}
        allowed = EVENT_TYPES[event]
        for key, value in extra.items():
            if key not in allowed:
                hint = suggest(str(key), sorted(allowed | own))
                raise SpecValueError(
                    f"unknown key {key!r} for event {event!r}{hint}; filters allowed here: "
                    f"{', '.join(sorted(allowed)) or 'none'}",
                    at=(key,),
                )
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise SpecValueError(
                    f"filter {key!r} must be a text pattern, got {value!r}", at=(key,)
                )
        merged = dict(data.get("where") or {})
        merged.update({k: str(v) for k, v in extra.items()})
        return {k: v for k, v in data.items() if k in own} | {"where": merged}

    @model_validator(mode="after")
    def _known_filters(self) -> EventCondition:
        allowed = EVENT_TYPES[self.event]
        unknown = sorted(set(self.where) - allowed)
        if unknown:
            raise SpecValueError(
                f"event {self.event!r} has no data key {unknown[0]!r}"
                f"{suggest(unknown[0], allowed)}; filters allowed here: "
                f"{', '.join(sorted(allowed)) or 'none'}",
                at=("where", unknown[0]),
            )
        return self


class AllOf(SpecModel):
    all: list[Condition] = Field(min_length=1, description="Every condition must hold.")


class AnyOf(SpecModel):
    any: list[Condition] = Field(min_length=1, description="At least one condition holds.")


class NotOf(SpecModel):
    not_: Condition = Field(alias="not", description="The condition must not hold.")


_KINDS = {"all": "all", "any": "any", "not": "not", "not_": "not", "field": "field"}


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return {
            AllOf: "all",
            AnyOf: "any",
            NotOf: "not",
            FieldCondition: "field",
            EventCondition: "event",
        }.get(type(value))
    if isinstance(value, dict):
        for key, kind in _KINDS.items():
            if key in value:
                return kind
        if "event" in value:
            return "event"
    return None


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[FieldCondition, Tag("field")]
    | Annotated[EventCondition, Tag("event")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message=(
            "a condition is a mapping with 'field', 'event', 'all', 'any' or 'not'"
        ),
    ),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()

ConditionKind = Literal["all", "any", "not", "field", "event"]


def iter_conditions(cond: Condition) -> list[Condition]:
    """Every condition in a tree, depth first: validation walks it to check references."""
    out: list[Condition] = [cond]
    if isinstance(cond, AllOf):
        for c in cond.all:
            out += iter_conditions(c)
    elif isinstance(cond, AnyOf):
        for c in cond.any:
            out += iter_conditions(c)
    elif isinstance(cond, NotOf):
        out += iter_conditions(cond.not_)
    return out
