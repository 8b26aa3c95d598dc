"""Read queries the web app's sequence report will plausibly run, written the way they must
be to stay fast at a million rows. ``bench/scale.py`` times them and ``test_query_plans``
checks their plans; the prospect search is the app's own
(``engine.services.views.prospect_search``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from engine.store import Enrollment, EnrollmentStatus


def step_counts(version_id: int) -> Select[Any]:
    """Active enrollments of one sequence version per step (cursor): the sequence report."""
    return (
        select(Enrollment.cursor, func.count())
        .where(
            Enrollment.sequence_version_id == version_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(Enrollment.cursor)
        .order_by(Enrollment.cursor)
    )
