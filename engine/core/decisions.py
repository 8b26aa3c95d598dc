"""Decisions the core returns and the services carry out.

They are plain values so a test can assert on exactly what would happen, and so the one
place that turns them into rows and jobs (the services) is easy to audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ExitKind(StrEnum):
    """How an enrollment ended; mirrors the store's final enrollment statuses."""

    COMPLETED = "completed"  # ran off the end or reached an `end` step
    EXITED = "exited"  # an exit condition held


@dataclass(frozen=True)
class SendEmail:
    """Write one outbox row. ``iteration`` makes a looped step's second send a new row."""

    step_id: str
    template: str
    subject: str
    iteration: int
    preheader: str | None = None
    # The enrollment's A/B variants when the email was decided: (split step id, variant).
    variants: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AssignVariant:
    """Record that the enrollment went down ``variant`` of the split step ``split_id``."""

    split_id: str
    variant: str


@dataclass(frozen=True)
class WakeAt:
    """Look at this enrollment again at ``at`` (or sooner, if an event arrives)."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class Exit:
    kind: ExitKind
    reason: str


@dataclass(frozen=True)
class TraceEntry:
    """One line of an enrollment's story: used by ``nurture simulate`` and the activity log."""

    at: datetime
    step_id: str | None
    kind: str  # "email" | "wait" | "waited" | "branch" | "split" | "goto" | "exit" | "end"
    detail: str
