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
  path that commits per event pays.

Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert, select
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import Settings  # noqa: E402
from engine.mail.catalog import FileTemplateCatalog  # noqa: E402
from engine.services.accounts import create_token  # noqa: E402
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


def seed(url: str, prospects: int, now: datetime) -> str:
    """Shipped sequences and scoring; prospects parked in a wait of lost-on-price."""
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
                    "email": f"b{i}@example.com",
                    "status": "closed_lost",
                    "lost_reason": "price",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(prospects)
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
    _, token = create_token(uow(), "bench", now)
    return token


def events(count: int, prospects: int, tag: str) -> list[dict[str, object]]:
    return [
        {
            "type": "page.visited",
            "email": f"b{i % prospects}@example.com",
            "data": {"path": PAGES[i % len(PAGES)]},
            "idempotency_key": f"{tag}-{i}",
        }
        for i in range(count)
    ]


def post_all(port: int, token: str, bodies: list[bytes], clients: int) -> float:
    chunks = [bodies[i::clients] for i in range(clients)]
    failures: list[str] = []

    def run(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for body in chunk:
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
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
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    url, pg_name = database(args.database)
    upgrade(url)
    now = datetime.now(UTC)
    token = seed(url, args.prospects, now)
    settings = Settings(database_url=url, secret_key="bench", log_level="WARNING")
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    try:
        singles = [json.dumps(e).encode() for e in events(args.events, args.prospects, "one")]
        ours = post_all(port, token, singles, args.clients)
        batched = events(args.events, args.prospects, "batch")
        batches = [
            json.dumps({"events": batched[i : i + 100]}).encode()
            for i in range(0, len(batched), 100)
        ]
        batch = post_all(port, token, batches, args.clients)
        base = bare_inserts(url, args.events, args.prospects, now)
    finally:
        server.shutdown()
        app.extensions["nurture"].close()
        if pg_name:
            with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    n = args.events
    rows = [
        ("ours  (HTTP, 1 event/request)", ours),
        ("ours  (HTTP, 100 events/request)", batch),
        ("baseline (bare inserts, 1 txn/event)", base),
    ]
    print(
        f"ingest on {args.database}: {n} events, {args.prospects} prospects, {args.clients} clients"
    )
    for label, seconds in rows:
        print(f"  {label:<38} {n / seconds:8.0f} events/s  {seconds / n * 1e3:6.2f} ms/event")
    print(
        f"  ratio ours/baseline (time per event): single {ours / base:.2f}x, "
        f"batch {batch / base:.2f}x"
    )
    print(f"  machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
