"""Event ingest: events/s through the HTTP API into scored ledger rows, vs bare inserts.

    python bench/ingest.py [--events 3000] [--prospects 300] [--clients 4] [--database ...]

Measured in one run on the same database:

* ours: ``POST /api/v1/events`` over real HTTP (werkzeug threaded server, ``--clients``
  keep-alive connections), one event per request with an idempotency key, each one
  authenticated, validated, stored, scored into the ledger (caps, decay, re-qualification
  check) and fed to the prospect's active nurture (exit check), in one transaction;
* batch: the same through ``{"events": [...]}`` requests of 100;
* baseline: bare inserts of the same rows (one ``events`` row plus its ``score_entries``
  row per event), one transaction per event, from one connection: the floor any ingest
  path that commits per event pays;
* history: one client posting single events (visits the prospect's wait tests, a case
  study's points, no handoff) for prospects with 10, 1,000 and 10,000 prior events (and a
  ledger entry for every third): the cost of an event must not grow with the history.

Each path reports latency percentiles per request and the statements the app's database
engine ran per event (everything: the token check, the event's transaction).

Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import Engine, event, insert, select
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
from webapp import create_app  # noqa: E402

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
    port: int, token: str, bodies: list[bytes], clients: int, latencies: list[float] | None = None
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
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
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


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    url, pg_name = database(args.database)
    upgrade(url)
    now = datetime.now(UTC)
    token = seed(url, args.prospects, now, args.history_prospects)
    settings = Settings(database_url=url, secret_key="bench", log_level="WARNING")
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    app_engine = app.extensions["nurture"].engine
    n = args.events
    load_before = load()
    try:
        warm = [json.dumps(e).encode() for e in events(100, args.prospects, "warm")]
        post_all(port, token, warm, args.clients)  # caches, pool, prepared statements
        singles = [json.dumps(e).encode() for e in events(n, args.prospects, "one")]
        one_latency: list[float] = []
        with counting(app_engine) as one_statements:
            ours = post_all(port, token, singles, args.clients, one_latency)
        batched = events(n, args.prospects, "batch")
        batches = [json.dumps({"events": batched[i : i + 100]}).encode() for i in range(0, n, 100)]
        batch_latency: list[float] = []
        with counting(app_engine) as batch_statements:
            batch = post_all(port, token, batches, args.clients, batch_latency)
        history = []
        for depth in DEPTHS:
            bodies = [
                json.dumps(e).encode()
                for e in events(
                    args.history_events,
                    args.history_prospects,
                    f"h{depth}",
                    f"h{depth}-",
                    [p for p in PAGES if p != "/pricing"],  # scored, but no handoff
                )
            ]
            latency: list[float] = []
            with counting(app_engine) as statements:
                post_all(port, token, bodies, 1, latency)
            history.append((depth, latency, statements[0] / len(bodies)))
        base = bare_inserts(url, n, args.prospects, now)
    finally:
        server.shutdown()
        app.extensions["nurture"].close()
        if pg_name:
            with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    print(
        f"ingest on {args.database}: {n} events, {args.prospects} prospects, "
        f"{args.clients} clients; load average before {load_before}, after {load()}"
    )
    rows = [
        ("ours  (HTTP, 1 event/request)", ours, one_statements[0] / n, one_latency),
        ("ours  (HTTP, 100 events/request)", batch, batch_statements[0] / n, batch_latency),
        ("baseline (bare inserts, 1 txn/event)", base, None, None),
    ]
    for label, seconds, per_event, latency in rows:
        line = f"  {label:<38} {n / seconds:8.0f} events/s  {seconds / n * 1e3:6.2f} ms/event"
        if per_event is not None:
            line += f"  {per_event:5.1f} statements/event"
        print(line)
        if latency:
            print(f"  {'':<38} per request: {percentiles(latency)}")
    print(
        f"  ratio ours/baseline (time per event): single {ours / base:.2f}x, "
        f"batch {batch / base:.2f}x"
    )
    print(f"  history (1 client, {args.history_events} single events per depth):")
    for depth, latency, per_event in history:
        print(
            f"    {depth:>6} prior events: {percentiles(latency)}  "
            f"{per_event:4.1f} statements/event"
        )
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
