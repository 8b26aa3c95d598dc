"""The scoring model: points per event, caps, decay, threshold, fast-track, cool-down, SLA.

Scoring is data a marketer tunes; the pure core (``engine.core.scoring``) applies it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from engine.spec.conditions import EventCondition, SpecModel
from engine.spec.durations import Duration
from engine.spec.errors import SpecValueError
from engine.spec.send_window import SendWindow


class ScoreRule(EventCondition):
    """Points for each matching event; ``daily_cap`` bounds what one rule can add per day."""

    points: int = Field(description="Points per matching event; negative lowers the score.")
    daily_cap: int | None = Field(
        None, ge=1, description="Most points this rule may add per prospect per day."
    )
    name: str | None = Field(None, description="Label shown in the score's path.")

    @model_validator(mode="after")
    def _points(self) -> ScoreRule:
        if self.points == 0:
            raise SpecValueError(
                "a rule with 0 points does nothing: remove it or give it points", at=("points",)
            )
        for key, set_ in (
            ("since", self.since is not None),
            ("within", self.within is not None),
            ("min_count", self.min_count != 1),
        ):
            if set_:
                raise SpecValueError(
                    f"scoring rules take no {key!r}: every matching event scores, and "
                    "half_life already makes old events count less",
                    at=(key,),
                )
        if self.daily_cap is not None and self.points < 0:
            raise SpecValueError(
                "daily_cap only applies to positive points: remove it", at=("daily_cap",)
            )
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        filters = " ".join(f"{k}={v}" for k, v in sorted(self.where.items()))
        return f"{self.event} {filters}".strip()


class Sla(SpecModel):
    """How long sales has to act on a handoff; business hours skip nights and weekends."""

    within: Duration = Field(timedelta(hours=8), description="Time to follow up.")  # type: ignore[valid-type]
    business_hours: SendWindow | None = Field(
        default_factory=lambda: SendWindow(timezone="UTC"),
        description="Count only these hours (days/from/to/timezone), or null for wall time.",
    )


class ScoringSpec(SpecModel):
    threshold: int = Field(60, ge=1, description="Decayed score that hands a prospect back.")
    half_life: Duration = Field(timedelta(days=21), description="Points halve every ...")  # type: ignore[valid-type]
    cooldown: Duration = Field(  # type: ignore[valid-type]
        timedelta(days=7), description="Least time between two handoffs of one prospect."
    )
    reject_cooldown: Duration = Field(  # type: ignore[valid-type]
        timedelta(days=30), description="After sales rejects, wait this long before nurturing."
    )
    rules: list[ScoreRule] = Field(min_length=1, description="Points per event.")
    fast_track: list[EventCondition] = Field(
        default_factory=list, description="Events that hand a prospect back at once."
    )
    sla: Sla = Field(default_factory=Sla, description="Follow-up deadline for sales.")

    @field_validator("fast_track", mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        """Allow ``fast_track: [meeting.booked]`` as well as full event conditions."""
        if isinstance(v, list):
            return [{"event": item} if isinstance(item, str) else item for item in v]
        return v

    def to_json(self) -> dict[str, Any]:
        """The stored form. ``sla.business_hours: null`` (wall-clock time) is kept as null:
        dropped with the other Nones, it would read back as the business-hours default."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.sla.business_hours is None:
            data.setdefault("sla", {})["business_hours"] = None
        return data
