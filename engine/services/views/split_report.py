"""A/B splits compared: per variant, how many prospects clicked (a person, not a scanner),
were handed to sales, and were accepted, with a plain statement of whether a difference
is significant yet (``engine.core.significance``: the two-proportion z-test, explained in
docs/reports.md).

The unit is the enrollment that reached the split (each prospect counted once per pass
through the sequence): its recorded variant is in ``Enrollment.state["variants"]``, and
its outcomes are the human clicks on its own emails (their stamps, ``engine.services.
message_stamps``) and the handoffs that ended it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select

from engine.core.significance import Comparison, Tally, compare_all
from engine.services.loading import spec_by_id
from engine.spec.sequence import SplitStep
from engine.store import (
    Enrollment,
    Handoff,
    HandoffStatus,
    Message,
    SequenceVersion,
    UnitOfWork,
)

__all__ = ["OUTCOMES", "SplitReport", "VariantRow", "split_reports"]

OUTCOMES = (
    ("clicked", "Clicked (people)"),
    ("handed_off", "Handed to sales"),
    ("accepted", "Accepted by sales"),
)


@dataclass(frozen=True)
class VariantRow:
    variant: str
    prospects: int
    clicked: int
    handed_off: int
    accepted: int

    def rate(self, outcome: str) -> str:
        hits = int(getattr(self, outcome))
        return f"{hits / self.prospects:.1%}" if self.prospects else ""


@dataclass(frozen=True)
class SplitReport:
    split_id: str
    variants: list[VariantRow]
    comparisons: dict[str, list[Comparison]]  # outcome -> each variant against the first


def split_reports(uow: UnitOfWork, sequence_id: int, version_id: int) -> list[SplitReport]:
    """Every split step of ``version_id``'s spec, over the enrollments of the sequence (all
    versions: a prospect keeps their variant across versions)."""
    with uow:
        s = uow.session
        spec = spec_by_id(s, version_id)
        splits = [step for step in spec.steps if isinstance(step, SplitStep)]
        reports = []
        versions = select(SequenceVersion.id).where(SequenceVersion.sequence_id == sequence_id)
        for step in splits:
            variant = Enrollment.state[("variants", step.id)].as_string()
            # the sequence's emails a person clicked: their stamps, not every click event
            clicked = select(Message.enrollment_id).where(
                Message.sequence_version_id.in_(versions), Message.first_clicked_at.is_not(None)
            )
            stmt = (
                select(
                    variant,
                    func.count(distinct(Enrollment.id)),
                    func.count(distinct(Enrollment.id)).filter(Enrollment.id.in_(clicked)),
                    func.count(distinct(Handoff.id)).filter(
                        Handoff.status != HandoffStatus.WITHDRAWN
                    ),
                    func.count(distinct(Handoff.id)).filter(
                        Handoff.status == HandoffStatus.ACCEPTED
                    ),
                )
                .outerjoin(Handoff, Handoff.enrollment_id == Enrollment.id)
                .where(Enrollment.sequence_id == sequence_id, variant.is_not(None))
                .group_by(variant)
            )
            found = {row[0]: row for row in s.execute(stmt)}
            rows = [
                VariantRow(
                    v.variant, *(int(x or 0) for x in found.get(v.variant, (v, 0, 0, 0, 0))[1:])
                )
                for v in step.split
            ]
            comparisons = {
                outcome: compare_all(
                    [Tally(r.variant, r.prospects, getattr(r, outcome)) for r in rows]
                )
                for outcome, _ in OUTCOMES
            }
            reports.append(SplitReport(step.id, rows, comparisons))
        return reports
