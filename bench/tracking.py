"""Tracking endpoints: latency of the open pixel, click redirect and unsubscribe page.

    python bench/tracking.py [--hits 100] [--clients 16] [--messages 200] [--database ...]

One run per server (``--server``): werkzeug's threaded server in this process, and gunicorn
(the production server: ``webapp.gunicorn_config``, ``--workers`` gthread workers of
``--threads`` threads, on ``bench/tracking_app.py``), each on a freshly seeded database.
``--clients`` threads each on its own keep-alive ``http.client`` connection, each sending
``--hits`` requests per scenario:

* baseline: ``GET /bench/ok``, a route answering an empty 200 on the same app and server,
  the floor of Flask + the server + the HTTP client on this machine;
* baseline + one round trip: ``GET /bench/db``, the same plus one ``SELECT 1`` on the
  hits' pool, the floor of anything that writes to the database before it answers;
* pixel: ``GET /t/o/<token>.gif`` over ``--messages`` sent messages (a person's agent,
  so opens are scored);
* pixel, one message: every client opening the SAME message (the burst after a send that
  must not serialise on one row);
* click: ``GET /t/c/<token>`` (302) over the messages' three links;
* unsubscribe page: ``GET /u/<token>`` (the confirmation page).

Reports p50/p95/p99 latency, requests/s and each scenario's ratio to the baseline.
Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk_client  # noqa: E402
from bench.ingest import database, seed  # noqa: E402
from bench.serving import (  # noqa: E402
    BASELINE_PATH,
    ROUND_TRIP_PATH,
    drop,
    gunicorn_server,
    load,
    werkzeug_server,
)
from engine.adapters.jobqueue import QUEUE_DEFAULT, InProcessJobQueue, RQJobQueue  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.mail.tokens import TokenSigner  # noqa: E402
from engine.services.scoring import save_scoring  # noqa: E402
from engine.services.tracking_hits import drain_hits  # noqa: E402
from engine.store import (  # noqa: E402
    Enrollment,
    Message,
    MessageStatus,
    TrackingHit,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)

SECRET = "bench-tracking"
LINKS = [
    "https://acme.example/pricing",
    "https://acme.example/case-studies/initech",
    "https://acme.example/book-a-call",
]
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)


def seed_messages(url: str, count: int, now: datetime) -> list[int]:
    """One sent message (three links, sent an hour ago) per seeded enrollment, and the
    shipped scoring rules, so hits take the full path: classify, record, score, reconsider."""
    factory = make_session_factory(make_engine(url))
    source = (ROOT / "sequences" / "scoring.yaml").read_text(encoding="utf-8")
    save_scoring(UnitOfWork(factory), source, "scoring.yaml", now)
    sent_at = now - timedelta(hours=1)
    with UnitOfWork(factory) as uow:
        s = uow.session
        enrollments = s.execute(
            select(Enrollment.id, Enrollment.prospect_id, Enrollment.sequence_version_id)
            .order_by(Enrollment.id)
            .limit(count)
        ).all()
        s.execute(
            insert(Message),
            [
                {
                    "enrollment_id": e.id,
                    "prospect_id": e.prospect_id,
                    "sequence_version_id": e.sequence_version_id,
                    "step_id": "value-recap",
                    "iteration": 0,
                    "template_key": "price/value-recap",
                    "status": MessageStatus.SENT,
                    "not_before": sent_at,
                    "sent_at": sent_at,
                    "links": LINKS,
                    "to_email": f"b{i}@example.com",
                }
                for i, e in enumerate(enrollments)
            ],
        )
        ids = list(s.scalars(select(Message.id).order_by(Message.id)).all())
        uow.commit()
    return ids


def hammer(port: int, paths: list[list[str]]) -> tuple[list[float], float]:
    """Each client thread GETs its list of paths on one keep-alive connection; returns
    every request's latency (s) and the wall time of the whole scenario."""
    latencies: list[list[float]] = [[] for _ in paths]
    failures: list[str] = []
    headers = {"User-Agent": BROWSER}

    def run(client: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = latencies[client]
        for path in paths[client]:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status not in (200, 302):
                failures.append(f"{response.status} {path}")
        conn.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(len(paths))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return [x for chunk in latencies for x in chunk], elapsed


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def figures(latencies: list[float], elapsed: float) -> wrk_client.WrkResult:
    """The Python client's latencies summarised as wrk reports them."""
    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    mean = statistics.mean(latencies)
    return wrk_client.WrkResult(len(latencies), elapsed, p50, p95, p99, mean)


def scenarios(
    signer: TokenSigner, messages: list[int], clients: int, hits: int
) -> dict[str, Callable[[int, int], str]]:
    """Scenario name -> path of hit ``i`` of client ``c``."""

    def spread(c: int, i: int) -> int:
        return messages[(c * hits + i) % len(messages)]

    hot = messages[0]
    return {
        "baseline (trivial 200)": lambda c, i: BASELINE_PATH,
        "baseline + one SELECT 1": lambda c, i: ROUND_TRIP_PATH,
        "open pixel": lambda c, i: f"/t/o/{signer.open(spread(c, i))}.gif",
        "open pixel, one message": lambda c, i: f"/t/o/{signer.open(hot)}.gif",
        "click redirect": lambda c, i: f"/t/c/{signer.click(spread(c, i), i % len(LINKS))}",
        "unsubscribe page (GET)": lambda c, i: f"/u/{signer.unsubscribe(spread(c, i))}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=100, help="requests per client per scenario")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--redis", help="queue the judging on RQ at this URL (no worker runs)")
    parser.add_argument(
        "--server", choices=["werkzeug", "gunicorn", "both"], default="both", help="HTTP server"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument(
        "--client",
        choices=["python", "wrk"],
        default="python",
        help="python: --clients threads in this process; wrk: Debian's C load generator "
        "(same closed loop, without the client threads' own GIL waits in the figures)",
    )
    parser.add_argument(
        "--seconds", type=float, default=10, help="with --client wrk: each scenario's length"
    )
    parser.add_argument(
        "--no-judge",
        action="store_true",
        help="with --redis: leave the recorded hits unjudged (judging is target 1's cost)",
    )
    args = parser.parse_args()
    servers = ["werkzeug", "gunicorn"] if args.server == "both" else [args.server]
    for kind in servers:
        url, pg_name = database(args.database)
        try:
            upgrade(url)
            now = datetime.now(UTC)
            seed(url, args.messages, now, per_depth=0)
            messages = seed_messages(url, args.messages, now)
            jobs_before = queued_jobs(args.redis)
            serve = serve_werkzeug if kind == "werkzeug" else serve_gunicorn
            with serve(url, args) as (port, label, finish):
                results = run(port, TokenSigner(SECRET), messages, args)
                hits = waiting_hits(url)
                jobs = queued_jobs(args.redis) - jobs_before
                skip = args.redis and args.no_judge
                drained = "  judging skipped (--no-judge)" if skip else finish()
        finally:
            drop(pg_name)
        report(args, label, results)
        if args.redis:
            print(f"  {hits} hits recorded, {jobs} judging job(s) queued for them")
        print(drained)


Results = list[tuple[str, wrk_client.WrkResult]]


def run(port: int, signer: TokenSigner, messages: list[int], args: argparse.Namespace) -> Results:
    """Every scenario, one after the other, against the server on ``port``, after a warm-up
    round of each (unmeasured: the first requests of a worker import modules, compile
    templates and open connections, and gunicorn's workers each have their own)."""
    plan = scenarios(signer, messages, args.clients, args.hits)
    warm = max(5, args.hits // 4)
    hammer(
        port, [[p(c, i) for p in plan.values() for i in range(warm)] for c in range(args.clients)]
    )
    results = []
    for name, path in plan.items():
        paths = [[path(c, i) for i in range(args.hits)] for c in range(args.clients)]
        if args.client == "wrk":
            results.append((name, wrk_client.run_wrk(port, paths, BROWSER, args.seconds)))
        else:
            results.append((name, figures(*hammer(port, paths))))
    return results


Served = Iterator[tuple[int, str, Callable[[], str]]]


@contextmanager
def serve_werkzeug(url: str, args: argparse.Namespace) -> Served:
    """werkzeug's threaded server in this process (the in-process queue's thread judges
    here too, unless ``--redis``)."""
    settings = Settings(
        database_url=url, secret_key=SECRET, log_level="WARNING", redis_url=args.redis
    )
    with werkzeug_server(settings) as (port, app):
        yield port, "werkzeug threaded", lambda: catch_up(app, url)


@contextmanager
def serve_gunicorn(url: str, args: argparse.Namespace) -> Served:
    """gunicorn in a process of its own; without ``--redis`` each worker process judges on
    its own in-process queue's thread."""
    environment = {
        "NURTURE_DATABASE_URL": url,
        "NURTURE_SECRET_KEY": SECRET,
        "NURTURE_LOG_LEVEL": "WARNING",
        "NURTURE_REDIS_URL": args.redis or "",
    }
    label = f"gunicorn gthread {args.workers} workers x {args.threads} threads"
    with gunicorn_server(environment, args.workers, args.threads) as port:
        yield port, label, lambda: catch_up_elsewhere(url, args.redis)


def waiting_hits(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(TrackingHit)) or 0)
    finally:
        engine.dispose()


def queued_jobs(redis_url: str | None) -> int:
    """Jobs waiting on the default queue (the judging jobs: no worker runs)."""
    if not redis_url:
        return 0
    queue = RQJobQueue.from_url(redis_url)
    try:
        return queue.depths()[QUEUE_DEFAULT]
    finally:
        queue.close()


def catch_up(app: Flask, url: str) -> str:
    """How long the judging of the recorded hits ran on after the last answer: the
    in-process queue's thread finishing, then whatever is still waiting (with RQ and no
    worker, all of it) judged here."""
    runtime = app.extensions["nurture"]
    start = time.perf_counter()
    if isinstance(runtime.queue, InProcessJobQueue):
        runtime.queue.join()
    left = drain_hits(runtime.uow(), limit=10**9)
    return (
        f"  judging caught up {time.perf_counter() - start:.1f} s after the last answer "
        f"({left} hits judged after the in-process queue was done)"
    )


def catch_up_elsewhere(url: str, redis_url: str | None) -> str:
    """The same for gunicorn: wait for its workers' in-process queues to empty the table
    (polled), or with RQ and no worker, judge everything here."""
    start = time.perf_counter()
    if redis_url:
        factory = make_session_factory(make_engine(url))
        left = drain_hits(UnitOfWork(factory), limit=10**9)
        return f"  judging the {left} hits here took {time.perf_counter() - start:.1f} s"
    while waiting_hits(url):
        time.sleep(0.5)
    return f"  the web workers' judging caught up {time.perf_counter() - start:.1f} s later"


def report(args: argparse.Namespace, label: str, results: Results) -> None:
    queue = "RQ, no worker during the run" if args.redis else "embedded (in-process) queue"
    client = (
        f"wrk, {args.seconds:g} s a scenario"
        if args.client == "wrk"
        else f"Python threads, {args.hits} hits each a scenario"
    )
    print(
        f"tracking on {args.database}, {label}, {queue}: {args.clients} clients ({client}), "
        f"{args.messages} messages; load {load()}"
    )
    base_p99 = results[0][1].p99 * 1e3
    floor_p99 = results[1][1].p99 * 1e3
    print(
        f"  {'scenario':<26} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} "
        f"{'p99/base':>9} {'p99/1 trip':>10}"
    )
    for name, got in results:
        p50, p95, p99 = (x * 1e3 for x in (got.p50, got.p95, got.p99))
        rate = got.requests / got.elapsed
        print(
            f"  {name:<26} {p50:8.1f} {p95:8.1f} {p99:8.1f} {rate:8.0f} "
            f"{p99 / base_p99:8.1f}x {p99 / floor_p99:9.1f}x"
        )
    mean = results[0][1].mean * 1e3
    print(
        f"  baseline mean {mean:.2f} ms; machine: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )


if __name__ == "__main__":
    main()
