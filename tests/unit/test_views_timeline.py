"""The prospect timeline: emails and events merged, machines collapsed with their reason."""

from __future__ import annotations

from engine.services.views.timeline import EmailFact, EventFactRow, build_timeline
from tests.unit.core_helpers import at

MPP = "Apple Mail Privacy Protection proxy"


def event(
    id_: int, type_: str, minutes: float, machine: bool = False, reason: str | None = None, **data
):  # type: ignore[no-untyped-def]
    return EventFactRow(id_, type_, at(minutes=minutes), data, machine, reason, 5, "tracking")


def test_machine_runs_with_one_reason_collapse_and_people_stay_apart() -> None:
    emails = [EmailFact(5, "value-recap", "price/value-recap", "sent", at(), "lost-on-price", None)]
    events = [
        event(1, "email.opened", 1, True, MPP),
        event(2, "email.opened", 2, True, MPP),
        event(3, "email.opened", 3, True, MPP),
        event(4, "email.clicked", 30, step="value-recap", url="https://x.test/a"),
        event(5, "email.clicked", 31, True, "link scanner (clicked 2 s after delivery)"),
        event(6, "email.opened", 40, True, MPP),
    ]
    timeline = build_timeline(emails, events, {4: 8.0})
    shape = [(i.kind, i.title, i.count) for i in timeline.items]
    assert shape == [
        ("machine", "machine opens", 1),
        ("machine", "machine clicks", 1),
        ("event", "Clicked https://x.test/a in 'value-recap'", 1),
        ("machine", "machine opens", 3),
        ("email", "Email 'value-recap' of lost-on-price", 1),
    ]
    run = timeline.items[3]
    assert run.detail == MPP and run.event_ids == (3, 2, 1)
    assert (run.at, run.until) == (at(minutes=3), at(minutes=1))
    assert timeline.items[2].points == 8.0
    assert not timeline.truncated


def test_the_timeline_is_capped_and_says_so() -> None:
    events = [event(i, "page.visited", i, path=f"/p{i}") for i in range(10)]
    timeline = build_timeline([], events, {}, limit=4)
    assert [i.title for i in timeline.items] == [f"Visited /p{i}" for i in (9, 8, 7, 6)]
    assert timeline.truncated
