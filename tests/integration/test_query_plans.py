"""No hot path reads a whole table: each one runs for real on a seeded PostgreSQL database
(50,000 prospects with their enrollments, sent emails, events, score ledger, handoffs and
suppressions, ``VACUUM ANALYZE``-d) while its statements are recorded, and every statement's
plan must be free of sequential scans on the tables that grow with the business.

At 50,000 rows PostgreSQL already prefers an index wherever one fits, and a scan that is
cheap here costs seconds at a million rows (``bench/scale.py`` measures those).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from engine.clock import ManualClock
from engine.config import Settings
from engine.core.bots import RequestInfo
from engine.mail.tokens import TokenSigner
from engine.runtime import build_mailer
from engine.services.alerts import plan_alerts
from engine.services.delivery import send_batch
from engine.services.dispatch import recover_and_dispatch
from engine.services.events import record_event, record_events
from engine.services.prospects import upsert_prospect
from engine.services.reentry import reenter_due
from engine.services.schemas import EventInput
from engine.services.tick import tick
from engine.services.tracking import record_open, resolve_click
from engine.services.unsubscribe import unsubscribe
from engine.services.views.funnel import funnel, parse_filters
from engine.services.views.overview import overview
from engine.services.views.prospect_search import parse_filter, search_prospects
from engine.services.views.reports import message_report
from engine.services.views.sequences import sequence_page
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Prospect,
    SequenceVersion,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)
from tests.conftest import FIXED_NOW
from tests.support import app_queries
from tests.support.databases import PostgresServer
from tests.support.query_plans import full_scans, index_reads, recorded, table_reads
from tests.support.seeding import ROOT, SeedReport, analyze, email_of, seed

pytestmark = pytest.mark.postgres

GROWING = {
    "prospects",
    "enrollments",
    "events",
    "messages",
    "score_entries",
    "handoffs",
    "suppressions",
}
"""Tables whose size follows the business; small ones (versions, users) may be scanned."""

NOW = FIXED_NOW
DAY = timedelta(days=1)
HISTORY = 1_000


@dataclass
class Seeded:
    url: str
    report: SeedReport
    settings: Settings
    uow: Callable[[], UnitOfWork]
    engine: object


@pytest.fixture(scope="module")
def seeded(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    name = postgres_server.new_name("nurture_plans")
    url = postgres_server.create_database(name)
    try:
        upgrade(url)
        report = seed(
            url,
            NOW,
            prospects=50_000,
            events_per_prospect=4,
            due=1_000,
            histories=[HISTORY],
            handoffs=10_000,
            suppressions=10_000,
        )
        analyze(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        settings = Settings(
            database_url=url,
            secret_key="plans",
            outbox_dir=tmp_path_factory.mktemp("outbox"),
            templates_dir=ROOT / "templates",
            escalation_email="manager@seller.example",
            sales_inbox="sales@seller.example",
            send_rate_per_domain=1_000_000,
            frequency_cap=100,
        )
        yield Seeded(url, report, settings, lambda: UnitOfWork(factory), engine)
        engine.dispose()
    finally:
        postgres_server.drop_database(name)


def _tick(s: Seeded) -> None:
    assert tick(s.uow, NOW, batch_size=200, max_batches=1).advanced == 200


def _dispatch(s: Seeded) -> None:
    tick(s.uow, NOW, batch_size=50, max_batches=1)  # due emails to dispatch, whatever ran before
    assert recover_and_dispatch(s.uow(), NOW, s.settings).messages > 0


def _send(s: Seeded) -> None:
    tick(s.uow, NOW, batch_size=50, max_batches=1)
    with s.uow() as uow:
        ids = list(
            uow.session.scalars(
                select(Message.id).where(Message.status == MessageStatus.QUEUED).limit(20)
            )
        )
    assert ids, "the tick queued emails"
    mailer = build_mailer(s.settings, ManualClock(NOW))
    assert send_batch(s.uow, mailer, ids).sent > 0


def _alerts(s: Seeded) -> None:
    assert plan_alerts(s.uow(), NOW, s.settings) is not None


def _ingest(s: Seeded) -> None:
    heavy = s.report.history_prospects[HISTORY]
    event = {"type": "page.visited", "prospect_id": heavy, "data": {"path": "/blog/x"}}
    first = record_event(s.uow(), {**event, "idempotency_key": "plans-1"}, NOW)
    again = record_event(s.uow(), {**event, "idempotency_key": "plans-1"}, NOW)
    assert again.duplicate and again.event_id == first.event_id
    record_event(s.uow(), {"type": "email.clicked", "email": email_of(7)}, NOW)
    batch = [
        EventInput(
            type="page.visited",
            prospect_id=s.report.history_prospects[HISTORY] - n,
            data={"path": "/pricing"},
        )
        for n in range(1, 11)
    ]
    assert all(not isinstance(r, Exception) for r in record_events(s.uow(), batch, NOW))


def _upsert(s: Seeded) -> None:
    upsert_prospect(s.uow(), {"email": email_of(11), "company": "Renamed"}, NOW)
    result = upsert_prospect(
        s.uow(), {"email": "new@example.org", "status": "closed_lost", "lost_reason": "price"}, NOW
    )
    assert result.created and result.report.enrolled == 1


def _tracking(s: Seeded) -> None:
    signer = TokenSigner(s.settings.secret_key)
    message_id = s.report.sent_message_ids[5]
    person = RequestInfo(user_agent="Mozilla/5.0 (Macintosh)", ip="198.51.100.7")
    record_open(s.uow(), signer.open(message_id), person, NOW, signer=signer)
    resolve_click(s.uow(), signer.click(message_id, 0), person, NOW, signer=signer)


def _unsubscribe(s: Seeded) -> None:
    assert unsubscribe(s.uow(), s.report.sent_message_ids[6], NOW, "link")


def _prospect_search(s: Seeded) -> None:
    """The web app's own search (``engine.services.views.prospect_search``), every common
    filter, a second page of one of them."""
    filters = [
        {},
        {"company": "pany 0042"},
        {"email": "p00012"},
        {"name": "first12 last"},
        {"status": "not_ready"},
        {"owner": "rep7@seller.example"},
        {"owner": "none", "sort": "email"},
        {"score_min": "5"},
        {"sequence": "lost-on-price"},
        {"status": "closed_lost", "owner": "rep3@seller.example"},
    ]
    found = 0
    for params in filters:
        page = search_prospects(s.uow(), parse_filter(params), NOW)
        found += bool(page.rows)
        if page.next_cursor:
            search_prospects(s.uow(), parse_filter({**params, "after": page.next_cursor}), NOW)
    assert found == len(filters), "a filter found nothing: its plan would prove little"


def _step_counts(s: Seeded) -> None:
    with s.uow() as uow:
        counts = uow.session.execute(app_queries.step_counts(s.report.version_ids[0])).all()
    assert sum(n for _, n in counts) > 10_000


def _funnel(s: Seeded) -> None:
    """The funnel page's statements, default and filtered: the seed enrolled everyone in
    the last three days, so the default period's cohort is the whole population (counted
    from the enrollments' index alone), and the filters pick prospects through theirs."""
    filters = [
        {},
        {"owner": "rep7@seller.example"},
        {"sequence": "lost-on-price", "lost_reason": "price"},
        {"from": "2025-01-01", "to": "2025-01-31"},
    ]
    entered = [
        funnel(s.uow(), parse_filters(f, NOW), NOW).figures.counts["entered"] for f in filters
    ]
    assert entered[0] > 10_000 and entered[1] > 0 and entered[-1] == 0, entered


def _sequence_page(s: Seeded) -> None:
    page = sequence_page(s.uow(), "lost-on-price")
    assert sum(step.counts.human_opens for step in page.flow.steps) > 1_000


def _report(s: Seeded) -> None:
    report = message_report(s.uow(), s.report.version_ids[0])
    assert report.total.opened > 1_000 and report.total.clicked > 1_000


HOT_PATHS: dict[str, Any] = {
    "tick claim and advance": _tick,
    "message dispatch claim": _dispatch,
    "send: claim, policy, record": _send,
    "due handoff alerts": _alerts,
    "event ingest, idempotency, batch": _ingest,
    "prospect upsert and enrollment": _upsert,
    "tracking: open and click": _tracking,
    "unsubscribe": _unsubscribe,
    "a sequence version's step counts": _step_counts,
    "prospect search: every filter, keyset pages": _prospect_search,
    "the funnel: default, by owner, sequence and reason, an empty month": _funnel,
    "a sequence's page": _sequence_page,
}


@pytest.mark.parametrize("hot_path", list(HOT_PATHS.values()), ids=list(HOT_PATHS))
def test_a_hot_path_reads_no_whole_table(
    seeded: Seeded, hot_path: Callable[[Seeded], None]
) -> None:
    name = hot_path.__name__
    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        hot_path(seeded)

    assert statements, f"{name} ran no SQL"
    scans = full_scans(seeded.url, statements, GROWING)
    assert not scans, f"{name}: {len(scans)} sequential scan(s):\n\n" + "\n\n".join(map(str, scans))


def test_the_check_sees_a_sequential_scan(seeded: Seeded) -> None:
    """The check itself: a query no index can serve is reported, with its plan."""
    with recorded(seeded.engine) as statements, seeded.uow() as uow:  # type: ignore[arg-type]
        uow.session.execute(select(Message.id).where(Message.to_email.like("%0042%"))).all()

    (scan,) = full_scans(seeded.url, statements, GROWING)
    assert scan.table == "messages"
    assert "Seq Scan messages" in scan.plan


def test_step_counts_read_only_an_index(seeded: Seeded) -> None:
    """A third of the enrollments match: reading their rows is a million-row scan at scale
    (250 ms at a million enrollments, bench/README.md); a covering index answers alone."""
    with recorded(seeded.engine) as statements, seeded.uow() as uow:  # type: ignore[arg-type]
        uow.session.execute(app_queries.step_counts(seeded.report.version_ids[0])).all()

    assert table_reads(seeded.url, statements[0], "enrollments") == ["Index Only Scan"]


def test_the_overview_counts_recent_opens_from_an_index(seeded: Seeded) -> None:
    """The home page's opens and clicks of the last 30 days: without an index on the type
    and the time this reads every event (120 ms at a million events, bench/README.md)."""
    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        overview(seeded.uow(), NOW)

    recent = [s for s in statements if "FROM events" in s.sql and "occurred_at" in s.sql]
    assert len(recent) == 1, [s.sql for s in statements]
    assert table_reads(seeded.url, recent[0], "events") == ["Index Only Scan"]


def test_the_funnel_counts_its_cohort_from_the_enrollments_index(seeded: Seeded) -> None:
    """Entered and engaged for the whole population: one statement reading no event and no
    prospect row (3-7 s when it built a path per prospect, bench/README.md)."""
    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        funnel(seeded.uow(), parse_filters({}, NOW), NOW)

    counts = [s for s in statements if "count(DISTINCT enrollments.prospect_id)" in s.sql]
    assert len(counts) == 1, [s.sql for s in statements]
    assert table_reads(seeded.url, counts[0], "enrollments") == ["Index Only Scan"]
    assert table_reads(seeded.url, counts[0], "prospects") == ["Index Only Scan"]  # the erased


def test_a_sequence_report_reads_no_whole_table_but_the_leads(seeded: Seeded) -> None:
    """The report lists every lead its emails produced: hash-joining the handoffs (a table
    a twentieth the size of the prospects) to the version's emails is the planner's right
    choice, so the handoffs alone may be read whole; nothing else may."""
    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        _report(seeded)

    scans = full_scans(seeded.url, statements, GROWING - {"handoffs"})
    assert not scans, "\n\n".join(map(str, scans))


def test_a_versions_opens_and_clicks_are_read_from_one_index(seeded: Seeded) -> None:
    """The sequence page's and the report's per-step sent, opened and clicked: from the
    messages' engagement stamps through their covering index, never the emails' events
    (every open and click of the version: 360-1,400 ms at a million events before)."""
    version = seeded.report.version_ids[0]
    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        sequence_page(seeded.uow(), "lost-on-price")
        message_report(seeded.uow(), version)

    stamped = [s for s in statements if "first_opened_at" in s.sql]
    assert len(stamped) == 2, [s.sql for s in statements]
    for statement in stamped:
        assert "events" not in statement.sql
        assert table_reads(seeded.url, statement, "messages") == ["Index Only Scan"]


def test_the_reentry_sweep_finds_its_due_stamps_through_their_index(seeded: Seeded) -> None:
    """The sweep runs with every tick: its claim must read the few stamped enrollments
    (``ix_enrollments_reenroll_at``), never the history. 2,000 prospects left a sequence
    200 days ago: 300 of their waits are due now, the rest later. The suppression check
    of a batch (100 hashes, the import's statement) may read the seed's 10,000-row list
    whole: the planner's right choice at that size, an index probe per hash at scale."""
    version = seeded.report.version_ids[0]
    left = NOW - timedelta(days=200)
    with seeded.uow() as uow:
        sequence_id = uow.session.scalar(
            select(SequenceVersion.sequence_id).where(SequenceVersion.id == version)
        )
        people = uow.session.scalars(select(Prospect.id).order_by(Prospect.id.desc()).limit(2000))
        uow.session.execute(
            insert(Enrollment),
            [
                {
                    "prospect_id": pid,
                    "sequence_id": sequence_id,
                    "sequence_version_id": version,
                    "status": EnrollmentStatus.COMPLETED,
                    "cursor": 1,
                    "state": {},
                    "enrolled_at": left,
                    "ended_at": left,
                    "reenroll_at": NOW - timedelta(minutes=1 + n) if n < 300 else NOW + DAY * n,
                    "updated_at": left,
                    "lock_version": 1,
                }
                for n, pid in enumerate(people)
            ],
        )
        uow.commit()
    analyze(seeded.url)

    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        report = reenter_due(seeded.uow, NOW, batch_size=100, max_batches=1)
    assert report.reconsidered == 100

    scans = full_scans(seeded.url, statements, GROWING - {"suppressions"})
    assert not scans, "\n\n".join(map(str, scans))
    [claim] = [s for s in statements if "reenroll_at <=" in s.sql and "FOR UPDATE" in s.sql]
    assert table_reads(seeded.url, claim, "enrollments") == ["Index Scan"]


def test_the_tick_finds_a_batchs_outbox_rows_by_its_ids_whatever_the_statistics(
    seeded: Seeded,
) -> None:
    """The statistics of an outbox that held no queued email say none is queued, and a big
    tick queues thousands before the next ANALYZE (autovacuum waits for a tenth of the
    table to change). Planned on those statistics, each batch's outbox facts went through
    the status index and read every queued row: at a million prospects the tick fell from
    1,200 to 84 enrollments a second over 100,000 due (bench/README.md). Found by the
    batch's ids instead, whatever the planner believes."""
    with recorded(seeded.engine) as statements:  # type: ignore[arg-type]
        tick(seeded.uow, NOW, batch_size=50, max_batches=1)
    (facts,) = [s for s in statements if s.sql.lstrip().startswith("SELECT messages.enrollment_id")]
    unseen = (
        "UPDATE messages SET status = 'queued' WHERE id IN "
        "(SELECT id FROM messages WHERE status = 'sent' ORDER BY id LIMIT 20000)"
    )

    assert "ix_messages_status_not_before" not in index_reads(seeded.url, facts, unseen)
