"""Tracking endpoints: latency of the open pixel, click redirect and unsubscribe page.

    python bench/tracking.py [--hits 100] [--clients 16] [--messages 200] [--database ...]

One run, one werkzeug threaded server, ``--clients`` threads each on its own keep-alive
``http.client`` connection, each sending ``--hits`` requests per scenario:

* baseline: ``GET /bench/ok``, a route answering an empty 200 on the same app and server,
  the floor of Flask + werkzeug + the HTTP client on this machine;
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
import logging
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, Response
from sqlalchemy import insert, select
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import database, seed  # noqa: E402
from engine.adapters.jobqueue import InProcessJobQueue  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.mail.tokens import TokenSigner  # noqa: E402
from engine.services.scoring import save_scoring  # noqa: E402
from engine.store import (  # noqa: E402
    Enrollment,
    Message,
    MessageStatus,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)
from webapp import create_app  # noqa: E402
from webapp.access import public  # noqa: E402

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


def scenarios(
    signer: TokenSigner, messages: list[int], clients: int, hits: int
) -> dict[str, Callable[[int, int], str]]:
    """Scenario name -> path of hit ``i`` of client ``c``."""

    def spread(c: int, i: int) -> int:
        return messages[(c * hits + i) % len(messages)]

    hot = messages[0]
    return {
        "baseline (trivial 200)": lambda c, i: "/bench/ok",
        "open pixel": lambda c, i: f"/t/o/{signer.open(spread(c, i))}.gif",
        "open pixel, one message": lambda c, i: f"/t/o/{signer.open(hot)}.gif",
        "click redirect": lambda c, i: f"/t/c/{signer.click(spread(c, i), i % len(LINKS))}",
        "unsubscribe page (GET)": lambda c, i: f"/u/{signer.unsubscribe(spread(c, i))}",
    }


def _ok() -> Response:
    """The baseline route: an empty 200, nothing else."""
    return Response(b"", status=200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=100, help="requests per client per scenario")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--redis", help="queue the judging on RQ at this URL (no worker runs)")
    args = parser.parse_args()
    url, pg_name = database(args.database)
    upgrade(url)
    now = datetime.now(UTC)
    seed(url, args.messages, now)
    messages = seed_messages(url, args.messages, now)
    settings = Settings(
        database_url=url, secret_key=SECRET, log_level="WARNING", redis_url=args.redis
    )
    app = create_app(settings)
    app.add_url_rule("/bench/ok", "bench_ok", public(_ok))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results: list[tuple[str, list[float], float]] = []
    try:
        signer = TokenSigner(SECRET)
        for name, path in scenarios(signer, messages, args.clients, args.hits).items():
            paths = [[path(c, i) for i in range(args.hits)] for c in range(args.clients)]
            latencies, elapsed = hammer(server.server_port, paths)
            results.append((name, latencies, elapsed))
        drained = catch_up(app)
    finally:
        server.shutdown()
        app.extensions["nurture"].close()
        if pg_name:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    report(args, results)
    print(drained)


def catch_up(app: Flask) -> str:
    """How long the judging of the recorded hits ran on after the last answer: the
    in-process queue's thread finishing, then whatever is still waiting (with RQ and no
    worker, all of it) judged here."""
    runtime = app.extensions["nurture"]
    start = time.perf_counter()
    if isinstance(runtime.queue, InProcessJobQueue):
        runtime.queue.join()
    try:
        from engine.services.tracking_hits import drain_hits
    except ImportError:  # before the hits table: everything was judged while answering
        return "  judged inline, while answering"
    left = drain_hits(runtime.uow(), limit=10**9)
    return (
        f"  judging caught up {time.perf_counter() - start:.1f} s after the last answer "
        f"({left} hits judged after the in-process queue was done)"
    )


def report(args: argparse.Namespace, results: list[tuple[str, list[float], float]]) -> None:
    print(
        f"tracking on {args.database}: {args.clients} clients x {args.hits} hits per scenario, "
        f"{args.messages} messages"
    )
    base_p99 = percentile(results[0][1], 99)
    print(
        f"  {'scenario':<26} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p99/base':>9}"
    )
    for name, latencies, elapsed in results:
        p50, p95, p99 = (percentile(latencies, p) * 1e3 for p in (50, 95, 99))
        rate = len(latencies) / elapsed
        ratio = p99 / (base_p99 * 1e3)
        print(f"  {name:<26} {p50:8.1f} {p95:8.1f} {p99:8.1f} {rate:8.0f} {ratio:8.1f}x")
    mean = statistics.mean(results[0][1]) * 1e3
    print(
        f"  baseline mean {mean:.2f} ms; machine: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )


if __name__ == "__main__":
    main()
