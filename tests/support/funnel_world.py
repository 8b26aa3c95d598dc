"""A known history for the funnel: eight prospects whose every figure is worked out by hand.

| who | entered | engaged | handoff (8 h SLA) | sales | after |
| --- | --- | --- | --- | --- | --- |
| P1 | 03-02 10:00 | click | 03-04 10:00 | accepted 12:00 | opportunity 03-10, won 03-20 |
| P2 | 03-02 10:00 | open | 03-06 10:00 | accepted 03-07 09:00 (late) | opportunity 03-15 |
| P3 | 03-03 10:00 | visit | 03-05 10:00 | rejected 11:00 | enrolled again 03-19 |
| P4 | 03-04 10:00 | click | 03-08 10:00 | undecided (overdue on 03-09) | |
| P5 | 03-05 10:00 | machine opens only | | | |
| P6 | 03-06 10:00 | | | | |
| P7 | 02-10 10:00 | click | | | outside March |
| P8 | 03-07 10:00 (generic-lost, lost on timing, other owner) | click | | | |

March, all filters off: entered 7, engaged 5 (71.4%), re-qualified 4 (80.0%), accepted 2
(50.0%), opportunity 2 (100.0%), won 1 (50.0%) (P1 through CRM events, P2 through its
status); 1 sent back and recycled; 4 handoffs;
median to re-qualify 3 d (48, 96, 48, 96 h); median to a decision 2 h (2, 23, 1 h) against
an 8 h SLA; 2 of 4 decided in time (P4 is past its deadline), 50.0%.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.services.engagement import stamp_engagement
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    Prospect,
    SequenceVersion,
)
from tests.support.prospect_world import UowFactory
from tests.support.sequences import GENERIC_LOST, PRICE, store

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
OWNER = "rep@example.com"


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def seed_funnel(uow: UowFactory, now: datetime = NOW) -> None:
    price = store(uow, PRICE, now)
    generic = store(uow, GENERIC_LOST, now)
    with uow() as u:
        s = u.session

        def person(n: int, entered: datetime, version: SequenceVersion, **fields: object) -> int:
            values: dict[str, object] = {
                "status": "closed_lost",
                "lost_reason": "price",
                "owner_email": OWNER if n in (1, 2) else "other@example.com",
            }
            values.update(fields)
            prospect = Prospect(
                email=f"p{n}@funnel.example",
                attributes={},
                created_at=entered,
                updated_at=entered,
                **values,
            )
            s.add(prospect)
            s.flush()
            s.add(enrollment(prospect.id, version, entered))
            return prospect.id

        def enrollment(pid: int, version: SequenceVersion, entered: datetime) -> Enrollment:
            return Enrollment(
                prospect_id=pid,
                sequence_id=version.sequence_id,
                sequence_version_id=version.id,
                status=EnrollmentStatus.COMPLETED,  # the tick leaves them alone
                cursor=0,
                state={},
                enrolled_at=entered,
                next_run_at=None,
                updated_at=entered,
                lock_version=0,
            )

        def event(
            pid: int, kind: str, when: datetime, machine: bool = False, **data: object
        ) -> None:
            recorded = Event(
                prospect_id=pid,
                type=kind,
                occurred_at=when,
                received_at=when,
                data=data,
                machine=machine,
                machine_reason="Apple Mail Privacy Protection proxy" if machine else None,
            )
            s.add(recorded)
            stamp_engagement(s, recorded)  # as the events service does

        def handoff(
            pid: int, created: datetime, status: HandoffStatus, decided: datetime | None
        ) -> None:
            s.add(
                Handoff(
                    prospect_id=pid,
                    sequence_id=price.sequence_id,
                    status=status,
                    score=65,
                    context={"reason": "score 65 crossed the threshold of 60"},
                    created_at=created,
                    due_at=created + timedelta(hours=8),
                    decided_at=decided,
                    decided_by="rep@example.com" if decided else None,
                    reject_reason="not_ready" if status == HandoffStatus.REJECTED else None,
                )
            )

        p1 = person(1, at(3, 2), price)
        event(p1, "email.clicked", at(3, 3))
        handoff(p1, at(3, 4), HandoffStatus.ACCEPTED, at(3, 4, 12))
        event(p1, "crm.status_changed", at(3, 10), status="opportunity", previous_status="x")
        event(p1, "crm.status_changed", at(3, 20), status="customer", previous_status="x")

        p2 = person(2, at(3, 2), price, status="opportunity", status_changed_at=at(3, 15))
        event(p2, "email.opened", at(3, 3))
        handoff(p2, at(3, 6), HandoffStatus.ACCEPTED, at(3, 7, 9))

        p3 = person(3, at(3, 3), price)
        event(p3, "page.visited", at(3, 4), path="/pricing")
        handoff(p3, at(3, 5), HandoffStatus.REJECTED, at(3, 5, 11))
        s.flush()
        again = enrollment(p3, price, at(3, 19))
        s.add(again)

        p4 = person(4, at(3, 4), price)
        event(p4, "email.clicked", at(3, 5))
        handoff(p4, at(3, 8), HandoffStatus.OVERDUE, None)

        p5 = person(5, at(3, 5), price)
        event(p5, "email.opened", at(3, 6), machine=True)
        event(p5, "email.opened", at(3, 7), machine=True)

        person(6, at(3, 6), price)

        p7 = person(7, at(2, 10), price)
        event(p7, "email.clicked", at(2, 11))

        p8 = person(8, at(3, 7), generic, lost_reason="timing", owner_email="else@example.com")
        event(p8, "email.clicked", at(3, 8))
        u.commit()
