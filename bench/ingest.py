"""Event ingest: events/s through the HTTP API into scored ledger rows, vs bare inserts.

    python bench/ingest.py [--events 3000] [--prospects 300] [--clients 4] [--database ...]
                           [--server werkzeug|gunicorn|both] [--workers 2] [--threads 4]

One run per server (werkzeug's threaded server in this process, where the app's
statements are counted; gunicorn with gthread workers in a process of its own, the
production server), each on a freshly seeded database, measuring:

* floor: the single events' very bodies POSTed to ``/bench/ok`` on the same app, server
  and ``--clients`` keep-alive connections: an empty 200 after the request hooks. No
  endpoint on this server and machine answers faster; single events are compared with it;
* ours: ``POST /api/v1/events``, one event per request with an idempotency key, each one
  authenticated, validated, stored, scored into the ledger (caps, decay, re-qualification
  check) and fed to the prospect's active nurture (exit check), in one transaction;
* batch: the same through ``{"events": [...]}`` requests of 100;
* baseline: bare inserts of the same rows (one ``events`` row plus its ``score_entries``
  row per event), one transaction per event, from one connection: the floor any ingest
  path that commits per event pays (measured once);
* history: one client posting single events (visits the prospect's wait tests, a case
  study's points, no handoff) for prospects with 10, 1,000 and 10,000 prior events (and a
  ledger entry for every third): the cost of an event must not grow with the history.

Each path reports latency percentiles per request and, under werkzeug, the statements the
app's database engine ran per event (everything: the token check, the event's transaction).

Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import Engine, event, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import BASELINE_PATH, drop, gunicorn_server, load, werkzeug_server  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.mail.catalog import FileTemplateCatalog  # noqa: E402
from engine.services.accounts import create_token  # noqa: E402
from engine.services.scoring import current_scoring, refresh_scores  # noqa: E402
from engine.services.sequences import sync_sequences  # noqa: E402
from engine.store import (  # noqa: E402
    Enrollment,
    EnrollmentStatus,
    Event,
    Prospect,
    ScoreEntry,
    Sequence,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)

EVENTS_PATH = "/api/v1/events"
PAGES = ["/blog/roi", "/case-studies/northwind", "/docs/start", "/pricing", "/about"]
DEPTHS = (10, 1_000, 10_000)
HISTORY_TYPES = ("email.opened", "page.visited", "email.clicked", "email.opened")


def database(kind: str) -> tuple[str, str | None]:
    if kind == "postgresql":
        name = f"nurture_bench_{os.getpid()}"
        with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1/{name}", name
    path = Path("/tmp") / f"nurture-bench-{os.getpid()}.sqlite3"
    path.unlink(missing_ok=True)
    return f"sqlite:///{path}", None


def seed(url: str, prospects: int, now: datetime, per_depth: int) -> str:
    """Shipped sequences and scoring; prospects parked in a wait of lost-on-price, and
    ``per_depth`` more for each history depth (``h<depth>-<i>@example.com``)."""
    factory = make_session_factory(make_engine(url))
    uow = lambda: UnitOfWork(factory)  # noqa: E731
    catalog = FileTemplateCatalog(ROOT / "templates")
    sync_sequences(uow, [ROOT / "sequences"], catalog, now)
    with uow() as unit:
        s = unit.session
        seq = s.scalars(select(Sequence).where(Sequence.key == "lost-on-price")).one()
        s.execute(
            insert(Prospect),
            [
                {
                    "email": email,
                    "status": "closed_lost",
                    "lost_reason": "price",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for email in [f"b{i}@example.com" for i in range(prospects)]
                + [f"h{d}-{i}@example.com" for d in DEPTHS for i in range(per_depth)]
            ],
        )
        ids = s.scalars(select(Prospect.id)).all()
        s.execute(
            insert(Enrollment),
            [
                {
                    "prospect_id": pid,
                    "sequence_id": seq.id,
                    "sequence_version_id": seq.current_version_id,
                    "status": EnrollmentStatus.ACTIVE,
                    "cursor": 1,
                    "state": {"wait_started_at": now.isoformat(), "visits": {}, "step_log": {}},
                    "next_run_at": now + timedelta(days=4),
                    "enrolled_at": now,
                    "updated_at": now,
                    "lock_version": 1,
                }
                for pid in ids
            ],
        )
        unit.commit()
    for depth in DEPTHS:
        add_history(uow, depth, per_depth, now)
    _, token = create_token(uow(), "bench", now)
    return token


def add_history(uow: object, depth: int, per_depth: int, now: datetime) -> None:
    """``depth`` past events per prospect of that depth over three years ending two months
    ago (before their enrollment), a ledger entry of half a point for every third (decayed,
    even 10,000 leave the score far under the threshold), and their cached scores
    recomputed."""
    with uow() as unit:  # type: ignore[operator]
        s = unit.session
        ids = s.scalars(
            select(Prospect.id).where(Prospect.email.like(f"h{depth}-%")).order_by(Prospect.id)
        ).all()
        for pid in ids:
            for start in range(0, depth, 5000):
                rows = [
                    {
                        "prospect_id": pid,
                        "type": HISTORY_TYPES[i % len(HISTORY_TYPES)],
                        "occurred_at": now - timedelta(days=60, minutes=i * 3 * 525_600 // depth),
                        "received_at": now,
                        "data": {"path": PAGES[i % len(PAGES)]},
                        "machine": False,
                    }
                    for i in range(start, min(depth, start + 5000))
                ]
                event_ids = s.scalars(insert(Event).returning(Event.id), rows).all()
                s.execute(
                    insert(ScoreEntry),
                    [
                        {
                            "prospect_id": pid,
                            "event_id": eid,
                            "rule": "Read a case study",
                            "points": 0.5,
                            "occurred_at": row["occurred_at"],
                        }
                        for eid, row in zip(event_ids, rows, strict=True)
                        if eid % 3 == 0
                    ],
                )
        spec = current_scoring(s)
        if spec is not None:
            refresh_scores(s, ids, spec, now)
        unit.commit()


def events(
    count: int, prospects: int, tag: str, prefix: str = "b", pages: list[str] = PAGES
) -> list[dict[str, object]]:
    return [
        {
            "type": "page.visited",
            "email": f"{prefix}{i % prospects}@example.com",
            "data": {"path": pages[i % len(pages)]},
            "idempotency_key": f"{tag}-{i}",
        }
        for i in range(count)
    ]


def post_all(
    port: int,
    token: str,
    bodies: list[bytes],
    clients: int,
    latencies: list[float] | None = None,
    path: str = EVENTS_PATH,
) -> float:
    """Post every body from ``clients`` keep-alive connections; the wall time, and each
    request's latency appended to ``latencies``."""
    chunks = [bodies[i::clients] for i in range(clients)]
    failures: list[str] = []
    timings: list[float] = [] if latencies is None else latencies

    def run(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for body in chunk:
            began = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            timings.append(time.perf_counter() - began)  # list.append is atomic
            if response.status >= 300:
                failures.append(str(response.status))
        conn.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. HTTP {failures[0]}")
    return elapsed


@contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    """How many statements ``engine`` ran meanwhile (``[n]``; an executemany counts once)."""
    seen = [0]

    def note(*args: object) -> None:
        seen[0] += 1

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def percentiles(latencies: list[float]) -> str:
    """p50/p95/p99 in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1e3:6.1f}  p95 {cuts[94] * 1e3:6.1f}  p99 {cuts[98] * 1e3:6.1f} ms"


def bare_inserts(url: str, count: int, prospects: int, now: datetime) -> float:
    factory = make_session_factory(make_engine(url))
    with UnitOfWork(factory) as uow:
        ids = uow.session.scalars(select(Prospect.id).order_by(Prospect.id)).all()
    start = time.perf_counter()
    for i in range(count):
        with UnitOfWork(factory) as uow:
            s = uow.session
            event_id = s.execute(
                insert(Event).returning(Event.id),
                {
                    "prospect_id": ids[i % prospects],
                    "type": "page.visited",
                    "occurred_at": now,
                    "received_at": now,
                    "data": {"path": PAGES[i % len(PAGES)]},
                    "machine": False,
                    "idempotency_key": f"bare-{i}",
                },
            ).scalar_one()
            s.execute(
                insert(ScoreEntry),
                {
                    "prospect_id": ids[i % prospects],
                    "event_id": event_id,
                    "rule": "page.visited path=/pricing*",
                    "points": 15.0,
                    "occurred_at": now,
                },
            )
            uow.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--prospects", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--history-events", type=int, default=300, help="per history depth")
    parser.add_argument("--history-prospects", type=int, default=3, help="per history depth")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--server", choices=["werkzeug", "gunicorn", "both"], default="both", help="HTTP server"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    args = parser.parse_args()
    base: float | None = None
    for kind in ["werkzeug", "gunicorn"] if args.server == "both" else [args.server]:
        url, pg_name = database(args.database)
        try:
            upgrade(url)
            token = seed(url, args.prospects, datetime.now(UTC), args.history_prospects)
            load_before = load()
            with serve(kind, url, args) as (port, label, app_engine):
                runs = measure(port, token, app_engine, args)
            if base is None:
                base = bare_inserts(url, args.events, args.prospects, datetime.now(UTC))
        finally:
            drop(pg_name)
        print(
            f"ingest on {args.database}, {label}: {args.events} events, {args.prospects} "
            f"prospects, {args.clients} clients; load average before {load_before}, "
            f"after {load()}"
        )
        report(runs, base, args)
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")


@contextmanager
def serve(
    kind: str, url: str, args: argparse.Namespace
) -> Iterator[tuple[int, str, Engine | None]]:
    """The app on ``kind``'s server: its port, a label, and its database engine when it runs
    in this process (statements are counted there)."""
    if kind == "werkzeug":
        settings = Settings(database_url=url, secret_key="bench", log_level="WARNING")
        with werkzeug_server(settings) as (port, app):
            yield port, "werkzeug threaded", app.extensions["nurture"].engine
        return
    environment = {
        "NURTURE_DATABASE_URL": url,
        "NURTURE_SECRET_KEY": "bench",
        "NURTURE_LOG_LEVEL": "WARNING",
    }
    with gunicorn_server(environment, args.workers, args.threads) as port:
        yield port, f"gunicorn gthread {args.workers} workers x {args.threads} threads", None


Run = tuple[str, float, float | None, list[float]]


def measure(port: int, token: str, engine: Engine | None, args: argparse.Namespace) -> list[Run]:
    """Every path against the server on ``port``: (label, seconds, statements per event or
    None, per-request latencies); the history depths last."""
    n, clients = args.events, args.clients
    warm = [json.dumps(e).encode() for e in events(100, args.prospects, "warm")]
    post_all(port, token, warm, clients)  # caches, pool, prepared statements
    post_all(port, token, warm, clients, path=BASELINE_PATH)

    def timed(
        label: str, bodies: list[bytes], count: int, path: str = EVENTS_PATH, clients: int = clients
    ) -> Run:
        latency: list[float] = []
        with counting(engine) if engine is not None else nullcontext([0]) as statements:
            seconds = post_all(port, token, bodies, clients, latency, path)
        per_event = statements[0] / count if engine is not None and path == EVENTS_PATH else None
        return label, seconds, per_event, latency

    singles = [json.dumps(e).encode() for e in events(n, args.prospects, "one")]
    batched = events(n, args.prospects, "batch")
    batches = [json.dumps({"events": batched[i : i + 100]}).encode() for i in range(0, n, 100)]
    runs = [
        timed("floor (same bodies, empty 200)", singles, n, BASELINE_PATH),
        timed("ours  (HTTP, 1 event/request)", singles, n),
        timed("ours  (HTTP, 100 events/request)", batches, n),
    ]
    for depth in DEPTHS:
        pages = [p for p in PAGES if p != "/pricing"]  # scored, but no handoff
        bodies = [
            json.dumps(e).encode()
            for e in events(
                args.history_events, args.history_prospects, f"h{depth}", f"h{depth}-", pages
            )
        ]
        runs.append(timed(f"{depth} prior events", bodies, len(bodies), clients=1))
    return runs


def report(runs: list[Run], base: float | None, args: argparse.Namespace) -> None:
    n = args.events
    for label, seconds, per_event, latency in runs[:3]:
        line = f"  {label:<38} {n / seconds:8.0f} events/s  {seconds / n * 1e3:6.2f} ms/event"
        if per_event is not None:
            line += f"  {per_event:5.1f} statements/event"
        print(line)
        print(f"  {'':<38} per request: {percentiles(latency)}")
    floor, single, batch = (seconds for _, seconds, _, _ in runs[:3])
    print(f"  single events reach {floor / single:.0%} of the floor's request rate")
    if base is not None:
        print(
            f"  baseline (bare inserts, 1 txn/event) {n / base:8.0f} events/s  "
            f"{base / n * 1e3:6.2f} ms/event"
        )
        print(
            f"  ratio ours/baseline (time per event): single {single / base:.2f}x, "
            f"batch {batch / base:.2f}x"
        )
    print(f"  history (1 client, {args.history_events} single events per depth):")
    for label, _, per_event, latency in runs[3:]:
        counted = f"  {per_event:4.1f} statements/event" if per_event is not None else ""
        print(f"    {label:>20}: {percentiles(latency)}{counted}")


if __name__ == "__main__":
    main()
