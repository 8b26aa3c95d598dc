"""The event script format of ``nurture simulate``: what a marketer writes to rehearse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, TypeAdapter, field_validator, model_validator

from engine.spec.catalog import check_event_type
from engine.spec.conditions import SpecModel
from engine.spec.durations import Duration


class ScriptedEvent(SpecModel):
    """``{at: 3d, event: page.visited, data: {path: /pricing}}`` or
    ``{after: value-recap, delay: 2h, event: email.clicked}``."""

    event: str = Field(description="Event type.")
    at: Duration | None = Field(None, description="Offset from the simulation start.")  # type: ignore[valid-type]
    after: str | None = Field(None, description="Email step whose delivery this follows.")
    delay: Duration = Field(timedelta(0), description="Time after that delivery.")  # type: ignore[valid-type]
    data: dict[str, Any] = Field(default_factory=dict, description="Event data (url, path...).")
    machine: bool = Field(False, description="A bot/scanner event (recorded, never counts).")

    _check = field_validator("event")(classmethod(lambda cls, v: check_event_type(v)))

    @field_validator("delay", mode="before")
    @classmethod
    def _zero(cls, v: Any) -> Any:
        return timedelta(0) if v in (0, "0", None) else v

    @model_validator(mode="after")
    def _when(self) -> ScriptedEvent:
        if (self.at is None) == (self.after is None):
            raise ValueError("give exactly one of 'at' (offset like 3d) or 'after' (a step id)")
        return self


SCRIPT = TypeAdapter(list[ScriptedEvent])
