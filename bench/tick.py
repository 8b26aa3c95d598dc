"""The tick against a bare claim-and-update of the same rows, on PostgreSQL, in one run.

    python bench/tick.py                          # 100,000 due enrollments, batches of 500
    python bench/tick.py --due 20000 --events-per-prospect 5
    python bench/tick.py --profile 20             # + a cProfile of the tick, top 20
    python bench/tick.py --processes 2            # + two tick processes at once, on a copy

One database is seeded with COPY (``tests/support/seeding.py``: the shipped sequences, one
active enrollment per prospect, ``--due`` of them due now at their first step, events with
their score ledger, handoffs, suppressions) and copied twice with ``CREATE DATABASE ...
TEMPLATE``, so all three start identical. Then, in this order:

1. the bare claim-and-update on the first copy: batches of the tick's size of
   ``WITH due AS (SELECT id ... ORDER BY next_run_at, id LIMIT n FOR UPDATE SKIP LOCKED)
   UPDATE enrollments ... SET next_run_at, lock_version``, one commit per batch: the floor
   any tick pays (claim, one row version per enrollment, one commit per batch);
2. the tick (``engine.services.tick.tick``, with the default frequency cap, as the worker
   runs it) on the seeded database; with ``--processes N``, then N tick processes at once
   on a copy of their own (each its own interpreter: no shared GIL);
3. the bare claim-and-update again on the second copy, so a change of load on this shared
   machine during the run shows as a difference between 1 and 3.

The ratio is the tick's rate over the mean of the two bare rates. The databases are
dropped at the end. Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import platform
import pstats
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import Settings  # noqa: E402
from engine.core.policy import FrequencyCap  # noqa: E402
from engine.services.tick import tick  # noqa: E402
from engine.store import UnitOfWork, make_engine, make_session_factory, upgrade  # noqa: E402
from tests.support.databases import PostgresServer  # noqa: E402
from tests.support.seeding import analyze, seed  # noqa: E402

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--due", type=int, default=100_000, help="due enrollments")
    parser.add_argument("--prospects", type=int, default=0, help="default: twice --due")
    parser.add_argument("--events-per-prospect", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--concurrent", type=int, default=0, help="also N ticks at once, on a third copy"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="also N tick processes at once, on a copy"
    )
    parser.add_argument("--profile", type=int, default=0, help="print the top N of a cProfile")
    args = parser.parse_args()
    prospects = max(args.prospects or 2 * args.due, args.due)

    server = PostgresServer()
    problem = server.check()
    if problem:
        sys.exit(f"PostgreSQL is needed: {problem}")
    names = [server.new_name("nurture_tick")]
    print(f"# bench/tick.py on {platform.python_implementation()} {platform.python_version()}")
    print(f"{prospects:,} prospects, {args.due:,} due, ~{args.events_per_prospect:g} events each")
    try:
        url = server.create_database(names[0])
        upgrade(url)
        started = time.perf_counter()
        report = seed(
            url,
            NOW,
            prospects=prospects,
            events_per_prospect=args.events_per_prospect,
            due=args.due,
            handoffs=prospects // 20,
            suppressions=prospects // 50,
        )
        analyze(url)
        print(
            f"seeded {report.enrollments:,} enrollments, {report.events:,} events in "
            f"{time.perf_counter() - started:.0f} s (COPY + VACUUM ANALYZE)"
        )
        copies = {}
        for label in ("before", "after", "concurrent", "processes"):
            if label == "concurrent" and args.concurrent < 2:
                continue
            if label == "processes" and args.processes < 2:
                continue
            names.append(server.new_name(f"nurture_tick_{label}"))
            copies[label] = server.create_database(names[-1], template=names[0])
        results = [("bare claim-and-update, before", *bare_claim(copies["before"], args.batch))]
        results.append(("tick", *run_tick(url, args.batch, args.profile)))
        if args.processes > 1:
            label = f"{args.processes} tick processes at once"
            runs = tick_processes(copies["processes"], args.batch, args.processes)
            results.append((label, *runs))
        results.append(("bare claim-and-update, after", *bare_claim(copies["after"], args.batch)))
        if args.concurrent > 1:
            label = f"{args.concurrent} ticks at once (threads, one connection each)"
            results.append(
                (label, *concurrent_ticks(copies["concurrent"], args.batch, args.concurrent))
            )
        show(results, args)
    finally:
        for name in names:
            server.drop_database(name)


def run_tick(url: str, batch: int, profile: int) -> tuple[int, float]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    settings = Settings.from_env()
    cap = FrequencyCap(settings.frequency_cap, timedelta(days=settings.frequency_window_days))
    profiler = cProfile.Profile() if profile else None
    try:
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        report = tick(lambda: UnitOfWork(factory), NOW, batch_size=batch, cap=cap)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
    finally:
        engine.dispose()
    print(
        f"tick: advanced {report.advanced:,}, queued {report.emails_queued:,} emails, "
        f"deferred {report.deferred:,}, exited {report.exited:,}, {report.errors} errors, "
        f"{report.batches} batches; {cpu:.1f} s of this process's CPU in {seconds:.1f} s "
        f"({cpu / max(report.advanced, 1) * 1e6:.0f} µs per enrollment)"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(
            profile
        )
    return report.advanced + report.deferred, seconds


def concurrent_ticks(url: str, batch: int, count: int) -> tuple[int, float]:
    """``count`` ticks at once in threads of this process, as several schedulers would run
    them: ``SKIP LOCKED`` splits the batches, and one tick's Python overlaps another's
    wait for the database."""
    engine = make_engine(url, pool_size=count)
    factory = make_session_factory(engine)
    settings = Settings.from_env()
    cap = FrequencyCap(settings.frequency_cap, timedelta(days=settings.frequency_window_days))
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            reports = list(
                pool.map(
                    lambda _: tick(lambda: UnitOfWork(factory), NOW, batch_size=batch, cap=cap),
                    range(count),
                )
            )
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return sum(r.advanced + r.deferred for r in reports), seconds


def tick_processes(url: str, batch: int, count: int) -> tuple[int, float]:
    """``count`` ticks at once, each in its own process (no shared GIL), as several
    schedulers on several hosts would run them: ``SKIP LOCKED`` splits the batches. Timed
    from the moment all of them are ready to the last one's end."""
    context = multiprocessing.get_context("spawn")
    ready, start, out = context.Barrier(count + 1), context.Event(), context.Queue()
    workers = [
        context.Process(target=_tick_process, args=(url, batch, ready, start, out))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    ready.wait(120)
    started = time.perf_counter()
    start.set()
    done = [out.get(timeout=3600) for _ in workers]
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join(60)
    return sum(done), seconds


def _tick_process(url: str, batch: int, ready: Any, start: Any, out: Any) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    settings = Settings.from_env()
    cap = FrequencyCap(settings.frequency_cap, timedelta(days=settings.frequency_window_days))
    with factory() as session:  # connected before the clock starts
        session.execute(text("SELECT 1"))
    ready.wait(120)
    start.wait(120)
    report = tick(lambda: UnitOfWork(factory), NOW, batch_size=batch, cap=cap)
    engine.dispose()
    out.put(report.advanced + report.deferred)


def bare_claim(url: str, batch: int) -> tuple[int, float]:
    """Claim-and-update the due rows in batches with nothing else."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    later = NOW + timedelta(days=4)
    with psycopg.connect(conninfo) as conn:
        claimed, started = 0, time.perf_counter()
        while True:
            done = conn.execute(
                "WITH due AS (SELECT id FROM enrollments WHERE status = 'active' "
                "AND next_run_at <= %(now)s ORDER BY next_run_at, id LIMIT %(n)s "
                "FOR UPDATE SKIP LOCKED) UPDATE enrollments e SET next_run_at = %(later)s, "
                "lock_version = e.lock_version + 1 FROM due WHERE e.id = due.id",
                {"now": NOW, "later": later, "n": batch},
            ).rowcount
            conn.commit()
            claimed += done
            if done < batch:
                break
        return claimed, time.perf_counter() - started


def show(results: list[tuple[str, int, float]], args: argparse.Namespace) -> None:
    print(f"\n| path (batches of {args.batch}) | rows | seconds | enrollments/s |")
    print("|---|---:|---:|---:|")
    for label, rows, seconds in results:
        print(f"| {label} | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} |")
    bare = [rows / seconds for label, rows, seconds in results if label.startswith("bare")]
    for label, rows, seconds in results[2:]:
        if not label.startswith("bare"):
            print(f"\n{label} / bare: {rows / seconds / (sum(bare) / len(bare)):.1%}")
    ours = results[1][1] / results[1][2]
    mean = sum(bare) / len(bare)
    print(f"\ntick / bare (mean of before and after): {ours / mean:.1%}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
