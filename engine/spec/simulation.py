"""The event script format of ``nurture simulate``: what a marketer writes to rehearse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, TypeAdapter, field_validator, model_validator

from engine.spec.catalog import check_event_type, suggest
from engine.spec.conditions import SpecModel
from engine.spec.durations import Duration, parse_duration
from engine.spec.sequence import SequenceSpec, SplitStep


class ScriptedEvent(SpecModel):
    """``{at: 3d, event: page.visited, data: {path: /pricing}}`` or
    ``{after: value-recap, delay: 2h, event: email.clicked}``."""

    event: str = Field(description="Event type.")
    at: Duration | None = Field(None, description="Offset from the simulation start.")  # type: ignore[valid-type]
    after: str | None = Field(None, description="Email step whose delivery this follows.")
    delay: timedelta = Field(timedelta(0), description="Time after that delivery.")
    data: dict[str, Any] = Field(default_factory=dict, description="Event data (url, path...).")
    machine: bool = Field(False, description="A bot/scanner event (recorded, never counts).")

    _check = field_validator("event")(classmethod(lambda cls, v: check_event_type(v)))

    @field_validator("delay", mode="before")
    @classmethod
    def _zero(cls, v: Any) -> Any:
        if v is None or (isinstance(v, int | str) and str(v).strip().rstrip("wdhms") in ("0", "")):
            return timedelta(0)  # "right after delivery" is a valid delay here
        return parse_duration(v)

    @model_validator(mode="after")
    def _when(self) -> ScriptedEvent:
        if (self.at is None) == (self.after is None):
            raise ValueError("give exactly one of 'at' (offset like 3d) or 'after' (a step id)")
        return self


SCRIPT = TypeAdapter(list[ScriptedEvent])


def check_forced_variants(spec: SequenceSpec, forced: dict[str, str]) -> list[str]:
    """What is wrong with a simulation's chosen variants (split id -> variant), if anything:
    each must name a split step of ``spec`` and one of its variants."""
    splits = {s.id: s for s in spec.steps if isinstance(s, SplitStep)}
    problems = []
    for split_id, variant in forced.items():
        step = splits.get(split_id)
        if step is None:
            listing = f"; its splits: {', '.join(splits)}" if splits else ": it has no split"
            problems.append(
                f"{split_id!r} is no split step of {spec.key!r}{suggest(split_id, splits)}{listing}"
            )
        elif step.variant(variant) is None:
            names = [v.variant for v in step.split]
            problems.append(
                f"split {split_id!r} has no variant {variant!r}{suggest(variant, names)}; "
                f"its variants: {', '.join(names)}"
            )
    return problems
