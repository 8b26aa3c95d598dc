"""The tick draws each prospect's variant at a split from the prospect's own id, as the
simulator and ``engine.core.splits`` promise: not one variant for everybody.

(The tick's facts once held only the prospect's fields, so every real prospect drew as
"a prospect without an id" and all of them went down the same arm.)"""

from __future__ import annotations

from sqlalchemy import select

from engine.core.splits import draw
from engine.services.tick import tick
from engine.store import Enrollment
from tests.integration.test_tick_statements import add_due
from tests.support.sequences import store

SPLIT = """
key: split-at-tick
name: Split at the tick
enroll: {when: {field: status, eq: closed_lost}}
steps:
  - id: offer
    split:
      - {variant: recap, weight: 50, goto: recap}
      - {variant: story, weight: 50, goto: story}
  - id: recap
    email: price/value-recap
    subject: The numbers
  - end: completed
  - id: story
    email: price/case-study
    subject: How Northwind did it
"""


def test_each_prospect_draws_its_own_variant(uow_factory, now):
    version = store(uow_factory, SPLIT, now)
    add_due(uow_factory, version, 24, now)

    report = tick(uow_factory, now, batch_size=100)

    assert (report.advanced, report.errors) == (24, 0)
    with uow_factory() as uow:
        rows = uow.session.execute(select(Enrollment.prospect_id, Enrollment.state)).all()
    weights = [("recap", 50), ("story", 50)]
    drawn = {pid: state["variants"]["offer"] for pid, state in rows}
    assert drawn == {
        pid: draw("split-at-tick", "offer", str(pid), weights).variant for pid in drawn
    }
    assert set(drawn.values()) == {"recap", "story"}, "24 prospects, 50/50: both arms"
