"""A million prospects on PostgreSQL: seed with COPY, then measure what grows with the data.

    python bench/scale.py                       # 1M prospects, 10M events, 100k due
    python bench/scale.py --prospects 100000 --events-per-prospect 10 --due 10000
    python bench/scale.py --keep                # leave the database for a look afterwards
    python bench/scale.py --seed-only           # seed, size, keep it (for --from)
    python bench/scale.py --from nurture_scale_1a2b   # measure a copy of a seeded database
    python bench/scale.py --from nurture_scale_1a2b --processes 2   # the tick in 2 processes

A million prospects take 8-12 minutes to seed here; ``--seed-only`` then ``--from`` measure
the code of the moment on a copy (``CREATE DATABASE ... TEMPLATE``, migrated to the current
head) of one seed, as often as needed: the tick moves the due enrollments, so each
measurement needs its own copy.

In one run, on one freshly seeded database (``tests/support/seeding.py``: the shipped
sequences, one active enrollment and one sent email per prospect, events with their score
ledger, handoffs, suppressions, and three prospects with 10, 1,000 and 10,000 prior events):

1. the seed itself (COPY) and ``VACUUM ANALYZE``; the database size per prospect;
2. the bare claim-and-update of the due enrollments: ``FOR UPDATE SKIP LOCKED`` batches of
   the tick's size that only move ``next_run_at`` (the floor any tick pays); the rows are
   then put back as they were;
3. the tick (``engine.services.tick.tick``) over the same due enrollments, in this process
   or, with ``--processes N``, in N processes at once (as N schedulers would run it; the
   processes come from ``bench/tick.py``);
4. ingest latency (``record_event``, one event per transaction) for the prospects with long
   histories;
5. the web app's prospect search (``engine.services.views.prospect_search``, the first page
   and, for some filters, the next), a sequence version's step counts
   (``tests/support/app_queries.py``) and the ``/metrics`` snapshot, at p50/p95 over random
   parameters.

The database is dropped at the end unless ``--keep``. Benchmarks print numbers; tests never
assert on time.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tick import tick_processes  # noqa: E402  (bench/tick.py: the same NOW)

from engine.services.events import record_event  # noqa: E402
from engine.services.monitoring import operations_snapshot  # noqa: E402
from engine.services.tick import tick  # noqa: E402
from engine.services.views.prospect_search import parse_filter, search_prospects  # noqa: E402
from engine.store import UnitOfWork, make_engine, make_session_factory, upgrade  # noqa: E402
from tests.support import app_queries  # noqa: E402
from tests.support.databases import PostgresServer  # noqa: E402
from tests.support.seeding import SeedReport, analyze, seed  # noqa: E402

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HISTORIES = (10, 1_000, 10_000)
BATCH = 500
TABLES = ("prospects", "enrollments", "messages", "events", "score_entries", "handoffs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prospects", type=int, default=1_000_000)
    parser.add_argument("--events-per-prospect", type=float, default=10.0)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--ingest-events", type=int, default=30, help="per history size")
    parser.add_argument("--queries", type=int, default=100, help="runs per list query")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--seed-only", action="store_true", help="seed and keep; no measuring")
    parser.add_argument("--from", dest="source", help="measure a copy of this seeded database")
    parser.add_argument(
        "--processes", type=int, default=1, help="run the tick in N processes at once"
    )
    args = parser.parse_args()

    server = PostgresServer()
    problem = server.check()
    if problem:
        sys.exit(f"PostgreSQL is needed: {problem}")
    name = server.new_name("nurture_scale")
    url = server.create_database(name, template=args.source)
    print(f"# bench/scale.py on {platform.python_implementation()} {platform.python_version()}")
    print(
        f"database {name}; {args.prospects:,} prospects, ~{args.events_per_prospect:g} events each"
    )
    try:
        run(url, args)
    finally:
        if args.keep or args.seed_only:
            print(f"kept: {url}")
        else:
            server.drop_database(name)
            print(f"dropped {name}")


def run(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    report = reseeded(url, args.source) if args.source else seeded(url, args)
    if args.seed_only:
        return
    engine = make_engine(url)
    factory = make_session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    try:
        baseline = bare_claim(url)
        if args.processes > 1:
            advanced, ours = tick_processes(url, BATCH, args.processes)
            label = f"tick in {args.processes} processes (advanced {advanced:,})"
        else:
            started = time.perf_counter()
            ticked = tick(uow, NOW, batch_size=BATCH)
            ours = time.perf_counter() - started
            advanced = ticked.advanced
            label = (
                f"tick (advanced {advanced:,}, {ticked.emails_queued:,} emails queued, "
                f"{ticked.errors} errors)"
            )
        print(
            f"\n## tick over {report.due:,} due enrollments (batches of {BATCH})\n"
            f"| path | seconds | enrollments/s |\n|---|---:|---:|\n"
            f"| bare claim-and-update (FOR UPDATE SKIP LOCKED) | {baseline[1]:.1f} "
            f"| {baseline[0] / baseline[1]:,.0f} |\n"
            f"| {label} | {ours:.1f} | {advanced / ours:,.0f} |\n"
            f"tick / bare: {(advanced / ours) / (baseline[0] / baseline[1]):.1%}"
        )
        settle(url)
        ingest(uow, report.history_prospects, args.ingest_events)
        queries(uow, report, args.queries, report.prospects)
    finally:
        engine.dispose()


def reseeded(url: str, source: str) -> SeedReport:
    """What ``seed`` reported, read back from a copy of its database (migrated since,
    perhaps: the statistics are taken again)."""
    analyze(url)
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        count = conn.execute("SELECT count(*) FROM prospects").fetchone()[0]  # type: ignore[index]
        due = conn.execute(
            "SELECT count(*) FROM enrollments WHERE status = 'active' AND next_run_at <= %s",
            (NOW,),
        ).fetchone()[0]  # type: ignore[index]
        last = [r[0] for r in conn.execute("SELECT id FROM prospects ORDER BY id DESC LIMIT 3")]
        versions = [r[0] for r in conn.execute("SELECT current_version_id FROM sequences")]
    print(f"\n## a copy of {source}: {count:,} prospects, {due:,} due enrollments")
    sizes(url, count)
    return SeedReport(
        prospects=count,
        due=due,
        history_prospects=dict(zip(HISTORIES, sorted(last), strict=True)),
        version_ids=[v for v in versions if v is not None],
    )


def seeded(url: str, args: argparse.Namespace) -> SeedReport:
    """Seed (COPY), take the statistics, print the sizes."""
    started = time.perf_counter()
    report = seed(
        url,
        NOW,
        prospects=args.prospects,
        events_per_prospect=args.events_per_prospect,
        due=args.due,
        histories=HISTORIES,
        handoffs=args.prospects // 20,
        suppressions=args.prospects // 50,
        progress=lambda message: print(f"  [{time.perf_counter() - started:6.0f} s] {message}"),
    )
    seeded = time.perf_counter()
    analyze(url)
    analyzed = time.perf_counter()
    print(
        f"\n## seed\nCOPY of {report.prospects:,} prospects, {report.enrollments:,} enrollments, "
        f"{report.messages:,} messages, {report.events:,} events, {report.score_entries:,} "
        f"score entries, {report.handoffs:,} handoffs, {report.suppressions:,} suppressions: "
        f"{report.seconds:.0f} s; VACUUM ANALYZE {analyzed - seeded:.0f} s"
    )
    sizes(url, report.prospects)
    return report


def sizes(url: str, prospects: int) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        print("\n## size\n| table | rows | total size (with indexes) |\n|---|---:|---:|")
        for table in TABLES:
            rows, size = conn.execute(
                f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
            ).fetchone()  # type: ignore[misc]
            print(f"| {table} | {rows:,} | {size / 2**20:,.0f} MiB |")
    print(f"database: {total / 2**30:.2f} GiB, {total / prospects / 1024:.1f} KiB per prospect")


def bare_claim(url: str) -> tuple[int, float]:
    """Claim-and-update the due rows in batches with nothing else; then put them back."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    later = NOW + timedelta(days=4)
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE scale_due AS SELECT id, next_run_at, lock_version FROM enrollments "
            "WHERE status = 'active' AND next_run_at <= %s",
            (NOW,),
        )
        conn.commit()
        claimed, started = 0, time.perf_counter()
        while True:
            done = conn.execute(
                "WITH due AS (SELECT id FROM enrollments WHERE status = 'active' "
                "AND next_run_at <= %(now)s ORDER BY next_run_at, id LIMIT %(n)s "
                "FOR UPDATE SKIP LOCKED) UPDATE enrollments e SET next_run_at = %(later)s, "
                "lock_version = e.lock_version + 1 FROM due WHERE e.id = due.id",
                {"now": NOW, "later": later, "n": BATCH},
            ).rowcount
            conn.commit()
            claimed += done
            if done < BATCH:
                break
        seconds = time.perf_counter() - started
        conn.execute(
            "UPDATE enrollments e SET next_run_at = d.next_run_at, lock_version = d.lock_version "
            "FROM scale_due d WHERE e.id = d.id"
        )
        conn.execute("DROP TABLE scale_due")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE enrollments")
    return claimed, seconds


def settle(url: str) -> None:
    """VACUUM ANALYZE the tables the tick wrote, as autovacuum would soon after (it is off
    on this machine). Without it, the 100,000 rows the tick updated leave most of the
    enrollments' pages out of the visibility map, and the step counts' index-only scan
    fetches every row from the heap: a state no production database stays in."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE enrollments, messages")
    print(f"\nVACUUM ANALYZE of the tick's tables: {time.perf_counter() - started:.1f} s")


def ingest(uow: Callable[[], UnitOfWork], histories: dict[int, int], count: int) -> None:
    print(
        f"\n## ingest: one event per transaction (record_event), {count} events per prospect\n"
        "| prior events | p50 ms | p95 ms | max ms |\n|---:|---:|---:|---:|"
    )
    for prior, prospect_id in sorted(histories.items()):
        latencies = []
        for n in range(count):
            event = {
                "type": "page.visited",
                "prospect_id": prospect_id,
                "data": {"path": f"/blog/scale-{n}"},
                "idempotency_key": f"scale-{prospect_id}-{n}",
            }
            started = time.perf_counter()
            record_event(uow(), event, NOW + timedelta(seconds=n))
            latencies.append((time.perf_counter() - started) * 1000)
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        print(f"| {prior:,} | {p50:.1f} | {p95:.1f} | {max(latencies):.1f} |")


def queries(uow: Callable[[], UnitOfWork], report: object, runs: int, prospects: int) -> None:
    """The app's prospect search (first page and the next one) and the step counts."""
    rng = random.Random(11)
    versions = report.version_ids  # type: ignore[attr-defined]

    def search(params: dict[str, str], next_page: bool = False) -> None:
        page = search_prospects(uow(), parse_filter(params), NOW)
        if next_page and page.next_cursor:
            search_prospects(uow(), parse_filter({**params, "after": page.next_cursor}), NOW)

    def step_counts() -> None:
        with uow() as unit:
            unit.session.execute(app_queries.step_counts(rng.choice(versions))).all()

    def email() -> str:
        return f"p{rng.randrange(max(1, prospects // 1000)):04d}"

    cases: dict[str, Callable[[], None]] = {
        "search, no filter (newest first)": lambda: search({}),
        "search by email (contains), first page": lambda: search({"email": email()}),
        "search by email, first and next page": lambda: search({"email": email()}, True),
        "search by company (contains)": lambda: search(
            {"company": f"pany {rng.randrange(5000):04d}"}
        ),
        "search by status, first and next page": lambda: search(
            {"status": rng.choice(["closed_lost", "not_ready"])}, True
        ),
        "search by owner": lambda: search({"owner": f"rep{rng.randrange(40)}@seller.example"}),
        "search by sequence": lambda: search({"sequence": "lost-on-price"}),
        "search by score >= 20": lambda: search({"score_min": "20"}),
        "step counts of a sequence version": step_counts,
    }
    print("\n## list queries\n| query | p50 ms | p95 ms |\n|---|---:|---:|")
    for label, run_once in cases.items():
        latencies = []
        for _ in range(runs):
            started = time.perf_counter()
            run_once()
            latencies.append((time.perf_counter() - started) * 1000)
        print(f"| {label} | {percentile(latencies, 50):.1f} | {percentile(latencies, 95):.1f} |")
    latencies = []
    for _ in range(10):
        started = time.perf_counter()
        operations_snapshot(uow(), NOW)
        latencies.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(f"| /metrics database figures | {p50:.1f} | {p95:.1f} |")


def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


if __name__ == "__main__":
    main()
