"""The sequence language's typed model (v1).

A sequence is data: enrollment rules, exit rules, a send window and a list of steps, each
step being exactly one of ``email``, ``wait``, ``branch``, ``split``, ``goto`` or ``end``.
Structural checks that need the whole sequence (goto targets, reachability, loops) live
in ``engine.spec.validate`` so these models stay simple and serialisable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from engine.spec.conditions import Condition, EventCondition, SpecModel
from engine.spec.durations import Duration
from engine.spec.errors import SpecValueError
from engine.spec.limits import MAX_STEPS
from engine.spec.send_window import SendWindow

STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
STEP_ID_HINT = "use lowercase letters, digits, '-' and '_', like 'case-study'"
STEP_KINDS = ("email", "wait", "branch", "split", "goto", "end")
MAX_SPLIT_WEIGHT = 10_000
"""The most a split's weights may add up to: shares as fine as 0.01% (weights are shares,
so 50/50 and 1/1 split alike, and a total in the millions is a typo, not a plan)."""


def _check_step_id(value: str) -> str:
    if not STEP_ID.match(value):
        raise ValueError(f"bad step id {value!r}: {STEP_ID_HINT}")
    return value


class Sender(SpecModel):
    name: str | None = Field(None, description="Display name, e.g. 'Dana at Acme'.")
    email: str = Field(description="Address mail comes from.", pattern=r"^[^@\s]+@[^@\s]+$")


class Enroll(SpecModel):
    when: Condition = Field(description="Who enters this sequence.")
    reenroll_after: Duration | Literal["never"] = Field(  # type: ignore[valid-type]
        "never", description="How long after leaving a prospect may enter again, or 'never'."
    )
    priority: int = Field(0, description="Higher wins when several sequences match.")


class EmailStep(SpecModel):
    id: str | None = Field(None, description="Step id; needed to goto or refer to it.")
    email: str = Field(description="Template key: templates/<key>.mjml.")
    subject: str = Field(description="Subject line (Jinja: {{ prospect.first_name }}).")
    preheader: str | None = Field(None, description="Preview text shown after the subject.")
    sender: Sender | None = Field(None, alias="from", description="Overrides the sequence's.")

    _id = field_validator("id")(classmethod(lambda cls, v: v if v is None else _check_step_id(v)))

    @field_validator("email")
    @classmethod
    def _template_key(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_/-]*$", v) or ".." in v or v.endswith("/"):
            raise ValueError(
                f"bad template key {v!r}: name it like 'price/value-recap' "
                "(templates/price/value-recap.mjml, without the extension)"
            )
        return v


class WaitUntil(SpecModel):
    up_to: Duration = Field(description="Longest wait.")  # type: ignore[valid-type]
    until: EventCondition = Field(description="Stop waiting as soon as this event happens.")


class WaitStep(SpecModel):
    id: str | None = Field(None, description="Step id.")
    wait: Duration | WaitUntil = Field(description="'4d', or {up_to: 10d, until: {event: ...}}.")  # type: ignore[valid-type]

    _id = field_validator("id")(classmethod(lambda cls, v: v if v is None else _check_step_id(v)))


class BranchArm(SpecModel):
    if_: Condition = Field(alias="if", description="Condition for this arm.")
    goto: str = Field(description="Step to continue at when the condition holds.")


class BranchElse(SpecModel):
    else_: str = Field(alias="else", description="Step to continue at when no arm holds.")


def _arm_kind(value: Any) -> str | None:
    if isinstance(value, BranchArm | BranchElse):
        return "else" if isinstance(value, BranchElse) else "if"
    if isinstance(value, dict):
        return "else" if "else" in value else "if"
    return None


Arm = Annotated[
    Annotated[BranchArm, Tag("if")] | Annotated[BranchElse, Tag("else")],
    Discriminator(
        _arm_kind,
        custom_error_type="branch_arm",
        custom_error_message=(
            "a branch arm is a mapping: {if: <condition>, goto: <step>} or {else: <step>}"
        ),
    ),
]


class BranchStep(SpecModel):
    id: str | None = Field(None, description="Step id.")
    branch: list[Arm] = Field(min_length=1, description="Arms tried in order; 'else' last.")

    _id = field_validator("id")(classmethod(lambda cls, v: v if v is None else _check_step_id(v)))

    @model_validator(mode="after")
    def _else_last(self) -> BranchStep:
        for i, arm in enumerate(self.branch):
            if isinstance(arm, BranchElse) and i != len(self.branch) - 1:
                raise SpecValueError(
                    "'else' must be the last arm of a branch: arms after it could never run",
                    at=("branch", i),
                )
        return self

    @property
    def arms(self) -> list[BranchArm]:
        return [a for a in self.branch if isinstance(a, BranchArm)]

    @property
    def otherwise(self) -> str | None:
        last = self.branch[-1]
        return last.else_ if isinstance(last, BranchElse) else None


class SplitVariant(SpecModel):
    variant: str = Field(description="The variant's name, shown in the reports: 'case-study'.")
    weight: int = Field(description="Its share: prospects go down each variant by weight.")
    goto: str = Field(description="Step where prospects of this variant continue.")

    @field_validator("variant")
    @classmethod
    def _name(cls, v: str) -> str:
        if not STEP_ID.match(v):
            raise ValueError(f"bad variant name {v!r}: {STEP_ID_HINT}")
        return v

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"expected a whole number, got {v!r}")
        if isinstance(v, float) and not v.is_integer():
            raise ValueError(
                f"bad weight {v!r}: write a whole number; weights are shares, so 2 and 1 "
                "send two prospects down the first variant for every one down the second"
            )
        if isinstance(v, int | float) and not isinstance(v, bool) and v < 1:
            raise ValueError(
                f"bad weight {v!r}: a weight is a positive share like 50; to stop sending "
                "prospects down a variant, remove it from the split"
            )
        return v


class SplitStep(SpecModel):
    """An A/B test: each prospect goes down one variant, drawn by weight from a hash of the
    sequence key, this step's id and the prospect (``engine.core.splits``)."""

    id: str = Field(
        description="Required for a split: its id is part of each prospect's draw and names "
        "the test in the reports"
    )
    split: list[SplitVariant] = Field(description="The variants: {variant, weight, goto}.")

    _id = field_validator("id")(classmethod(lambda cls, v: _check_step_id(v)))

    @model_validator(mode="after")
    def _variants(self) -> SplitStep:
        if len(self.split) < 2:
            raise SpecValueError(
                f"a split needs at least two variants, this one has {len(self.split)}: add "
                "another, or replace the split with a goto",
                at=("split",),
            )
        first_at: dict[str, int] = {}
        for j, variant in enumerate(self.split):
            if variant.variant in first_at:
                raise SpecValueError(
                    f"the variant name {variant.variant!r} is already used by variant "
                    f"{first_at[variant.variant] + 1} of this split: give each variant its "
                    "own name (the reports tell them apart by it)",
                    at=("split", j, "variant"),
                )
            first_at[variant.variant] = j
        total = sum(v.weight for v in self.split)
        if total > MAX_SPLIT_WEIGHT:
            raise SpecValueError(
                f"the weights add up to {total:,}, more than {MAX_SPLIT_WEIGHT:,}: weights are "
                "shares, so 50 and 50 split exactly like 5,000 and 5,000; use smaller numbers",
                at=("split",),
            )
        return self

    @property
    def total_weight(self) -> int:
        return sum(v.weight for v in self.split)

    def weights(self) -> list[tuple[str, int]]:
        """``(variant, weight)`` in the order written: the order the draw uses."""
        return [(v.variant, v.weight) for v in self.split]

    def variant(self, name: str) -> SplitVariant | None:
        return next((v for v in self.split if v.variant == name), None)


class GotoStep(SpecModel):
    id: str | None = Field(None, description="Step id.")
    goto: str = Field(description="Step to jump to.")

    _id = field_validator("id")(classmethod(lambda cls, v: v if v is None else _check_step_id(v)))


class EndStep(SpecModel):
    id: str | None = Field(None, description="Step id.")
    end: str = Field("completed", description="Why the sequence ends here (shown in reports).")

    _id = field_validator("id")(classmethod(lambda cls, v: v if v is None else _check_step_id(v)))

    @field_validator("end", mode="before")
    @classmethod
    def _reason(cls, v: Any) -> Any:
        return "completed" if v is True or v is None else v


def _step_kind(value: Any) -> str | None:
    if isinstance(value, EmailStep | WaitStep | BranchStep | SplitStep | GotoStep | EndStep):
        return {
            EmailStep: "email",
            WaitStep: "wait",
            BranchStep: "branch",
            SplitStep: "split",
            GotoStep: "goto",
            EndStep: "end",
        }[type(value)]
    if isinstance(value, dict):
        kinds = [k for k in STEP_KINDS if k in value]
        if len(kinds) == 1:
            return kinds[0]
    return None


Step = Annotated[
    Annotated[EmailStep, Tag("email")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[GotoStep, Tag("goto")]
    | Annotated[EndStep, Tag("end")],
    Discriminator(
        _step_kind,
        custom_error_type="step",
        custom_error_message=("a step needs exactly one of: email, wait, branch, split, goto, end"),
    ),
]


class SequenceSpec(SpecModel):
    """One nurture sequence, as validated from YAML (or from its stored JSON)."""

    key: str = Field(description="Stable identifier, e.g. 'lost-on-price'.")
    name: str = Field(description="Human name shown in the UI.")
    description: str | None = Field(None, description="What the sequence is for.")
    enroll: Enroll = Field(description="Enrollment rules.")
    exit_when: Condition | None = Field(None, description="Leave as soon as this holds.")
    send_window: SendWindow = Field(default_factory=SendWindow, description="Sane hours.")
    sender: Sender | None = Field(None, alias="from", description="Default From for emails.")
    reply_to: str | None = Field(None, description="Reply-To address for every email.")
    steps: list[Step] = Field(min_length=1, description="What happens, in order.")

    @field_validator("steps", mode="before")
    @classmethod
    def _not_too_many(cls, v: Any) -> Any:
        # Before the steps are validated one by one: 800,000 of them must cost nothing.
        if isinstance(v, list) and len(v) > MAX_STEPS:
            raise ValueError(
                f"{len(v):,} steps; a sequence holds at most {MAX_STEPS}: split it into "
                "several sequences"
            )
        return v

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[^@\s]+@[^@\s]+$", v):
            raise ValueError(
                f"bad reply_to address {v!r}: write one address, like sales@example.com"
            )
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not STEP_ID.match(v):
            raise ValueError(f"bad sequence key {v!r}: {STEP_ID_HINT}")
        return v

    def step_ids(self) -> list[str]:
        """Each step's id; steps without one get ``step-<n>`` (1-based position)."""
        return [step.id or f"step-{i + 1}" for i, step in enumerate(self.steps)]

    def index_of(self, step_id: str) -> int:
        return self.step_ids().index(step_id)

    def to_json(self) -> dict[str, Any]:
        """The canonical stored form; ``SequenceSpec.model_validate`` reads it back."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
