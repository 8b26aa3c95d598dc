"""A realistic PostgreSQL database of any size, written with COPY, for benchmarks and for the
index test.

The shape follows what the engine itself writes, not guesses: the shipped sequences and
scoring rules are synced through the real service, and one prospect per sequence is run
through the real upsert and tick to capture what a waiting enrollment and its sent email
look like (cursor, state, step, template). Every seeded row copies those shapes, so the
tick, the sender, ingest and tracking work on seeded rows exactly as on their own:

* prospects across the three shipped sequences, companies, statuses and owners;
* one active enrollment each: ``due`` of them at their first step and due now, the rest
  waiting after their first email (sent, with its outbox row);
* events: ``events_per_prospect`` on average (opens, clicks on the sent message, page
  visits, forms) over two years, with score-ledger rows for those the rules score, and
  some with idempotency keys; plus ``histories`` prospects with exactly that many prior
  events (machine opens and blog visits that score nothing, so ingest measures the
  common path, not a handoff);
* handoffs (open, overdue, decided) and suppressions;
* the messages' engagement stamps, recomputed from those events by the service.

Rows are generated in Python and streamed with ``COPY ... FROM STDIN``; ids are assigned
here (after whatever exists) so that related rows can point at them, and the id sequences
are moved past them at the end.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from engine.core.funnel import ENGAGEMENT_EVENTS
from engine.core.stepping import start_state
from engine.mail.catalog import FileTemplateCatalog
from engine.services.message_stamps import restamp_messages
from engine.services.prospects import upsert_prospect
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.tick import tick
from engine.spec.durations import parse_duration
from engine.store import (
    Enrollment,
    Message,
    Prospect,
    UnitOfWork,
    make_engine,
    make_session_factory,
)
from engine.store.suppressions import email_hash

ROOT = Path(__file__).resolve().parents[2]

PROFILES = (
    {"status": "closed_lost", "lost_reason": "price"},
    {"status": "not_ready"},
    {"status": "closed_lost", "lost_reason": "went_dark"},
)
"""One prospect profile per shipped sequence (lost-on-price, not-ready-timing, went-dark)."""

DOMAINS = ("example.org", "example.com", "example.net", "corp.example")
COMPANIES = 5_000
OWNERS = 40
PAGES = ("/pricing", "/pricing/teams", "/blog/roi", "/case-studies/northwind", "/docs/start")
# (event type, weight); scored ones get a ledger row as the shipped scoring.yaml says.
EVENT_MIX = (
    ("email.opened", 40),
    ("email.clicked", 20),
    ("page.visited", 35),
    ("form.submitted", 5),
)
TWO_YEARS = 730 * 86400


@dataclass(frozen=True)
class _Shape:
    """What the real services wrote for one sequence: copied onto every seeded row."""

    sequence_id: int
    version_id: int
    start_cursor: int
    waiting_cursor: int
    waiting_state: dict[str, object]
    step_id: str
    iteration: int
    template_key: str
    subject: str | None


@dataclass
class SeedReport:
    """What was written, for the caller to aim its measurements."""

    prospects: int = 0
    enrollments: int = 0
    due: int = 0
    events: int = 0
    score_entries: int = 0
    messages: int = 0
    handoffs: int = 0
    suppressions: int = 0
    history_prospects: dict[int, int] = field(default_factory=dict)  # prior events -> id
    version_ids: list[int] = field(default_factory=list)
    sent_message_ids: list[int] = field(default_factory=list)  # a sample, for tracking
    seconds: float = 0.0


def seed(
    database_url: str,
    now: datetime,
    *,
    prospects: int,
    events_per_prospect: float,
    due: int,
    histories: Iterable[int] = (),
    handoffs: int = 0,
    suppressions: int = 0,
    seed_value: int = 7,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Fill the migrated, empty PostgreSQL database at ``database_url`` (see module doc)."""
    started = time.perf_counter()
    rng = random.Random(seed_value)
    say = progress or (lambda _message: None)
    shapes = _real_shapes(database_url, now)
    report = SeedReport(version_ids=[s.version_id for s in shapes])
    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as conn:
        # As pg_restore --disable-triggers does: the rows are consistent by construction, and
        # per-row foreign-key checks would cost more than the COPY itself (needs superuser).
        conn.execute("SET session_replication_role = replica")
        ids = _next_ids(conn)
        histories = list(histories)
        total = prospects + len(histories)
        say(f"prospects: {total:,}")
        _copy(conn, "prospects", _PROSPECT_COLUMNS, _prospect_rows(ids, total, now, rng))
        report.prospects = total
        plan = _enrollment_plan(ids, total, due, shapes, rng)
        say(f"enrollments: {total:,} ({due:,} due)")
        _copy(conn, "enrollments", _ENROLLMENT_COLUMNS, _enrollment_rows(ids, plan, now, rng))
        report.enrollments, report.due = total, due
        message_ids = _message_ids(ids, plan)
        say(f"messages: {len(message_ids):,} sent")
        _copy(conn, "messages", _MESSAGE_COLUMNS, _message_rows(ids, plan, message_ids, now))
        report.messages = len(message_ids)
        report.sent_message_ids = list(message_ids.values())[:: max(1, len(message_ids) // 200)]
        counts = [_event_count(events_per_prospect, rng) for _ in range(prospects)] + histories
        for offset, count in enumerate(histories):
            report.history_prospects[count] = ids["prospects"] + prospects + offset
        say(f"events: {sum(counts):,} (and their score ledger)")
        with tempfile.TemporaryFile("w+", encoding="utf-8") as ledger:
            _copy(
                conn,
                "events",
                _EVENT_COLUMNS,
                _event_rows(ids, counts, prospects, message_ids, now, rng, ledger, report),
            )
            ledger.seek(0)
            _copy(conn, "score_entries", _LEDGER_COLUMNS, iter(ledger))
        _cache_scores(conn, now)
        _stamp_engagement(conn)
        say(f"handoffs: {handoffs:,}, suppressions: {suppressions:,}")
        _copy(conn, "handoffs", _HANDOFF_COLUMNS, _handoff_rows(ids, handoffs, prospects, now, rng))
        _copy(conn, "suppressions", _SUPPRESSION_COLUMNS, _suppression_rows(suppressions, now))
        report.handoffs, report.suppressions = handoffs, suppressions
        for table in (
            "prospects",
            "enrollments",
            "messages",
            "events",
            "score_entries",
            "handoffs",
        ):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        conn.commit()
    say("engagement stamps on the messages")
    _stamp_messages(database_url)
    # Statistics for what the caller runs next: planned on defaults, an UPDATE joining the
    # seeded handoffs to their first message (bench/pages.py) walked the whole messages
    # table per enrollment, minutes instead of seconds.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE")
    report.seconds = time.perf_counter() - started
    return report


def _stamp_messages(database_url: str) -> None:
    """The messages' open and click stamps from the seeded events, by the service's own
    recomputation (``engine.services.message_stamps.restamp_messages``): what ``record_event``
    would have left on them, event by event."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(make_session_factory(engine)) as unit:
            restamp_messages(unit.session)
            unit.commit()
    finally:
        engine.dispose()


def analyze(database_url: str) -> None:
    """VACUUM ANALYZE: planner statistics and the visibility map, as autovacuum would."""
    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# -- the real shapes -------------------------------------------------------------------------


def _real_shapes(database_url: str, now: datetime) -> list[_Shape]:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    try:
        catalog = FileTemplateCatalog(ROOT / "templates")
        sync_templates(uow(), ROOT / "templates", now)
        sync = sync_sequences(uow, [ROOT / "sequences"], catalog, now)  # type: ignore[arg-type]
        if sync.problems:
            raise RuntimeError(f"the shipped sequences did not load: {sync.problems}")
        start = start_state(now).cursor
        shapes = []
        for number, profile in enumerate(PROFILES):
            email = f"shape-{number}@seed.invalid"
            upsert_prospect(uow(), {"email": email, **profile}, now)
            tick(uow, now)
            with uow() as unit:
                session = unit.session
                pid = session.scalar(select(Prospect.id).where(Prospect.email == email))
                enrollment = session.scalars(
                    select(Enrollment).where(Enrollment.prospect_id == pid)
                ).one()
                message = session.scalars(
                    select(Message).where(Message.enrollment_id == enrollment.id)
                ).one()
                shapes.append(
                    _Shape(
                        sequence_id=enrollment.sequence_id,
                        version_id=enrollment.sequence_version_id,
                        start_cursor=start,
                        waiting_cursor=enrollment.cursor,
                        waiting_state=dict(enrollment.state),
                        step_id=message.step_id,
                        iteration=message.iteration,
                        template_key=message.template_key,
                        subject=message.subject,
                    )
                )
        return shapes
    finally:
        engine.dispose()


# -- COPY -------------------------------------------------------------------------------------


def _copy(
    conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: Iterator[str]
) -> None:
    """Stream tab-separated lines (already escaped) into ``table``."""
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        chunk: list[str] = []
        for line in rows:
            chunk.append(line)
            if len(chunk) >= 5_000:
                copy.write("".join(chunk))
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))


def _next_ids(conn: psycopg.Connection) -> dict[str, int]:
    """The first free id of each table the seed writes."""
    tables = ("prospects", "enrollments", "messages", "events", "score_entries", "handoffs")
    return {
        t: conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchone()[0] for t in tables
    }  # type: ignore[index]


def _json(value: object) -> str:
    """JSON in COPY's text format: backslashes doubled (the JSON itself has no tabs)."""
    return json.dumps(value, separators=(",", ":")).replace("\\", "\\\\")


def _ts(moment: datetime) -> str:
    return moment.isoformat()


_N = "\\N"

_PROSPECT_COLUMNS = (
    "id", "email", "first_name", "last_name", "company", "title", "country", "status",
    "lost_reason", "lost_at", "owner_email", "source", "attributes", "created_at", "updated_at",
)  # fmt: skip


def email_of(i: int) -> str:
    """The email of the i-th seeded prospect."""
    return f"p{i:07d}@{DOMAINS[i % len(DOMAINS)]}"


def _prospect_rows(
    ids: dict[str, int], total: int, now: datetime, rng: random.Random
) -> Iterator[str]:
    base = ids["prospects"]
    for i in range(total):
        profile = PROFILES[i % len(PROFILES)]
        company = f"company {rng.randrange(COMPANIES):04d}"
        created = _ts(now - timedelta(seconds=rng.randrange(TWO_YEARS)))
        owner = f"rep{rng.randrange(OWNERS)}@seller.example" if i % 4 else _N
        yield (
            f"{base + i}\t{email_of(i)}\tFirst{i % 997}"
            f"\tLast{i % 1009}\t{company}\tBuyer\tUS\t{profile['status']}"
            f"\t{profile.get('lost_reason', _N)}\t{created}\t{owner}\tcrm\t{{}}\t{created}"
            f"\t{created}\n"
        )


def _enrollment_plan(
    ids: dict[str, int], total: int, due: int, shapes: list[_Shape], rng: random.Random
) -> list[tuple[_Shape, bool]]:
    """For each prospect: its sequence's shape, and whether its enrollment is due now."""
    due_rows = set(rng.sample(range(total), min(due, total)))
    return [(shapes[i % len(shapes)], i in due_rows) for i in range(total)]


_ENROLLMENT_COLUMNS = (
    "id", "prospect_id", "sequence_id", "sequence_version_id", "status", "cursor", "state",
    "next_run_at", "enrolled_at", "lock_version", "updated_at",
)  # fmt: skip


def _enrollment_rows(
    ids: dict[str, int], plan: list[tuple[_Shape, bool]], now: datetime, rng: random.Random
) -> Iterator[str]:
    for i, (shape, is_due) in enumerate(plan):
        if is_due:
            enrolled = now - timedelta(seconds=rng.randrange(1, 3600))
            cursor, state, next_run = shape.start_cursor, start_state(enrolled).to_json(), enrolled
        else:
            enrolled = now - timedelta(days=rng.randrange(1, 4))
            cursor, state = shape.waiting_cursor, shape.waiting_state
            next_run = now + timedelta(seconds=rng.randrange(3600, 30 * 86400))
        yield (
            f"{ids['enrollments'] + i}\t{ids['prospects'] + i}\t{shape.sequence_id}"
            f"\t{shape.version_id}\tactive\t{cursor}\t{_json(state)}\t{_ts(next_run)}"
            f"\t{_ts(enrolled)}\t1\t{_ts(enrolled)}\n"
        )


def _message_ids(ids: dict[str, int], plan: list[tuple[_Shape, bool]]) -> dict[int, int]:
    """prospect index -> the id of its sent first email (waiting enrollments only)."""
    found: dict[int, int] = {}
    for i, (_shape, is_due) in enumerate(plan):
        if not is_due:
            found[i] = ids["messages"] + len(found)
    return found


_MESSAGE_COLUMNS = (
    "id", "enrollment_id", "prospect_id", "sequence_version_id", "step_id", "iteration",
    "template_key", "subject", "status", "not_before", "created_at", "attempts", "sent_at",
    "smtp_message_id", "to_email", "links",
)  # fmt: skip

_LINKS = _json(["https://example.com/pricing", "https://example.com/case-studies/northwind"])


def _message_rows(
    ids: dict[str, int], plan: list[tuple[_Shape, bool]], message_ids: dict[int, int], now: datetime
) -> Iterator[str]:
    sent = _ts(now - timedelta(days=1))
    for i, message_id in message_ids.items():
        shape = plan[i][0]
        subject = _N if shape.subject is None else shape.subject.replace("\\", "\\\\")
        yield (
            f"{message_id}\t{ids['enrollments'] + i}\t{ids['prospects'] + i}\t{shape.version_id}"
            f"\t{shape.step_id}\t{shape.iteration}\t{shape.template_key}\t{subject}\tsent"
            f"\t{sent}\t{sent}\t1\t{sent}\t<seed-{message_id}@nurture.example>"
            f"\t{email_of(i)}\t{_LINKS}\n"
        )


def _event_count(mean: float, rng: random.Random) -> int:
    """Uniform on [0, 2 * mean]: every prospect has some history, none an outsized one."""
    return rng.randint(0, max(0, round(2 * mean)))


_EVENT_COLUMNS = (
    "id", "prospect_id", "type", "occurred_at", "received_at", "data", "message_id",
    "machine", "machine_reason", "idempotency_key", "source",
)  # fmt: skip
_LEDGER_COLUMNS = ("id", "prospect_id", "event_id", "rule", "points", "occurred_at", "created_at")


def _event_rows(
    ids: dict[str, int],
    counts: list[int],
    ordinary: int,
    message_ids: dict[int, int],
    now: datetime,
    rng: random.Random,
    ledger: IO[str],
    report: SeedReport,
) -> Iterator[str]:
    """Events, oldest first per prospect; the ledger rows of the scored ones go to ``ledger``."""
    event_id, entry_id = ids["events"], ids["score_entries"]
    kinds = [kind for kind, weight in EVENT_MIX for _ in range(weight)]
    for i, count in enumerate(counts):
        prospect_id = ids["prospects"] + i
        heavy = i >= ordinary
        message = message_ids.get(i)
        moments = sorted(
            now - timedelta(seconds=rng.randrange(60, TWO_YEARS)) for _ in range(count)
        )
        for occurred in moments:
            rule: tuple[str, float] | None = None
            machine, reason, message_id = "f", _N, _N
            if heavy:  # a long history that scores nothing: machine opens, blog visits
                if event_id % 2:
                    kind, data, machine, reason = "email.opened", {}, "t", "privacy proxy"
                else:
                    kind, data = "page.visited", {"path": f"/blog/post-{event_id % 500}"}
            else:
                kind = rng.choice(kinds)
                if kind == "email.opened":
                    data, rule = {}, ("Opened an email", 1.0)
                    message_id = _N if message is None else str(message)
                elif kind == "email.clicked":
                    data, rule = {"url": "https://example.com/pricing"}, ("Clicked a link", 8.0)
                    message_id = _N if message is None else str(message)
                elif kind == "page.visited":
                    path = rng.choice(PAGES)
                    data = {"path": path}
                    if path.startswith("/pricing"):
                        rule = ("Visited pricing", 15.0)
                    elif path.startswith("/case-studies"):
                        rule = ("Read a case study", 5.0)
                else:
                    data = {"form": "newsletter"}
            key = f"crm-{event_id}" if event_id % 3 == 0 else _N
            stamp = _ts(occurred)
            yield (
                f"{event_id}\t{prospect_id}\t{kind}\t{stamp}\t{stamp}\t{_json(data)}"
                f"\t{message_id}\t{machine}\t{reason}\t{key}\tapi\n"
            )
            if rule is not None:
                ledger.write(
                    f"{entry_id}\t{prospect_id}\t{event_id}\t{rule[0]}\t{rule[1]}\t{stamp}\t{stamp}\n"
                )
                entry_id += 1
                report.score_entries += 1
            event_id += 1
            report.events += 1


_HANDOFF_COLUMNS = (
    "id", "prospect_id", "status", "score", "context", "created_at", "due_at", "decided_at",
    "escalated_at", "alert_email_sent_at", "escalation_sent_at", "webhook_attempts",
)  # fmt: skip


def _handoff_rows(
    ids: dict[str, int], count: int, prospects: int, now: datetime, rng: random.Random
) -> Iterator[str]:
    """Mostly decided long ago (accepted or rejected), a few open or overdue, alerts sent."""
    chosen = rng.sample(range(prospects), min(count, prospects))
    for offset, i in enumerate(chosen):
        created = now - timedelta(seconds=rng.randrange(3600, TWO_YEARS))
        status = ("accepted", "rejected", "accepted", "rejected", "open", "overdue")[offset % 6]
        if status == "open":  # at most one open handoff per prospect: each i is distinct
            created = now - timedelta(hours=rng.randrange(1, 6))
        decided = _ts(created + timedelta(hours=5)) if status in ("accepted", "rejected") else _N
        escalated = _ts(created + timedelta(hours=9)) if status == "overdue" else _N
        yield (
            f"{ids['handoffs'] + offset}\t{ids['prospects'] + i}\t{status}\t{60 + offset % 40}"
            f"\t{{}}\t{_ts(created)}\t{_ts(created + timedelta(hours=8))}\t{decided}"
            f"\t{escalated}\t{_ts(created)}\t{escalated}\t0\n"
        )


_SUPPRESSION_COLUMNS = ("email", "email_hash", "reason", "created_at")


def _suppression_rows(count: int, now: datetime) -> Iterator[str]:
    stamp = _ts(now - timedelta(days=30))
    for i in range(count):
        address = f"gone{i}@example.net"
        yield f"{address}\t{email_hash(address)}\tunsubscribed\t{stamp}\n"


def _cache_scores(conn: psycopg.Connection[Any], now: datetime) -> None:
    """Each prospect's cached score (``Prospect.score_value``), as the scoring service keeps
    it: its ledger decayed to ``now`` with the current rules' half-life, in one statement."""
    spec = conn.execute("SELECT spec FROM scoring_versions ORDER BY id DESC LIMIT 1").fetchone()
    half_life = parse_duration(spec[0]["half_life"]).total_seconds() if spec else 21 * 86400
    conn.execute(
        """
        UPDATE prospects SET score_value = s.value, score_as_of = %(now)s
        FROM (
            SELECT prospect_id,
                   sum(points * power(0.5, extract(epoch FROM %(now)s - occurred_at) / %(hl)s))
                       AS value
            FROM score_entries WHERE occurred_at <= %(now)s GROUP BY prospect_id
        ) AS s
        WHERE prospects.id = s.prospect_id
        """,
        {"now": now, "hl": half_life},
    )


def _stamp_engagement(conn: psycopg.Connection[Any]) -> None:
    """Each enrollment's ``engaged_at``, as the events service keeps it
    (``engine.services.engagement``): its prospect's first person's engagement event at or
    after it started."""
    conn.execute(
        """
        UPDATE enrollments SET engaged_at = (
            SELECT min(occurred_at) FROM events
            WHERE events.prospect_id = enrollments.prospect_id
              AND events.occurred_at >= enrollments.enrolled_at
              AND NOT machine AND type = ANY(%(types)s)
        )
        WHERE prospect_id IN (
            SELECT prospect_id FROM events WHERE NOT machine AND type = ANY(%(types)s)
        )
        """,
        {"types": list(ENGAGEMENT_EVENTS)},
    )
