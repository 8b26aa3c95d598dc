"""The declarative languages marketers write: sequences and scoring (pure: no I/O)."""

from engine.spec.conditions import (
    AllOf,
    AnyOf,
    Condition,
    EventCondition,
    FieldCondition,
    NotOf,
    iter_conditions,
)
from engine.spec.durations import format_duration, parse_duration
from engine.spec.scoring import ScoreRule, ScoringSpec, Sla
from engine.spec.sequence import (
    BranchArm,
    BranchElse,
    BranchStep,
    EmailStep,
    EndStep,
    Enroll,
    GotoStep,
    SendWindow,
    SequenceSpec,
    SplitStep,
    SplitVariant,
    Step,
    WaitStep,
    WaitUntil,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "BranchArm",
    "BranchElse",
    "BranchStep",
    "Condition",
    "EmailStep",
    "EndStep",
    "Enroll",
    "EventCondition",
    "FieldCondition",
    "GotoStep",
    "NotOf",
    "ScoreRule",
    "ScoringSpec",
    "SendWindow",
    "SequenceSpec",
    "Sla",
    "SplitStep",
    "SplitVariant",
    "Step",
    "WaitStep",
    "WaitUntil",
    "format_duration",
    "iter_conditions",
    "parse_duration",
]
