"""CPU per single-event request, in this process, without a server or a client.

    PYTHONPATH=. .venv/bin/python bench/ingest_profile.py                  # 2,000 events
    PYTHONPATH=. .venv/bin/python bench/ingest_profile.py --profile --top 40

``bench/ingest.py`` measures the server, its clients and the machine as much as the app;
this measures what one ``POST /api/v1/events`` costs: the bench's single events (visits of
prospects parked in a wait of ``lost-on-price``, a fifth of them to the pricing page) sent
one after the other through Flask's test client, on a fresh PostgreSQL database seeded as
``ingest.py`` seeds it. It reports per event: this process's CPU (``process_time``: the app
and the test client), the CPU of PostgreSQL's backends serving the database (from
``/proc``), the statements the app's engine sent, and the most frequent of them; so a
saving or a regression shows without waiting for a quiet machine. ``--profile`` runs the
loop under cProfile (by CPU time) and prints the app's functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import EVENTS_PATH, database, events, seed  # noqa: E402
from bench.serving import drop, load  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.store import upgrade  # noqa: E402
from tests.support.statements import counting  # noqa: E402
from webapp import create_app  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1/postgres"


def backend_cpu(name: str) -> float:
    """CPU seconds (user + system) of the PostgreSQL backends connected to ``name``."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        pids = [pid for (pid,) in rows]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--prospects", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="under cProfile (CPU time)")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    url, name = database("postgresql")
    assert name is not None
    try:
        upgrade(url)
        token = seed(url, args.prospects, datetime.now(UTC), 0)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        app = create_app(Settings(database_url=url, secret_key="bench", log_level="WARNING"))
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(bodies: list[str]) -> None:
            for body in bodies:
                reply = client.post(EVENTS_PATH, data=body, headers=headers)
                if reply.status_code not in (200, 201):
                    raise SystemExit(f"HTTP {reply.status_code}: {reply.get_data(as_text=True)}")

        post([json.dumps(e) for e in events(200, args.prospects, "warm")])  # caches, prepares
        bodies = [json.dumps(e) for e in events(args.events, args.prospects, "one")]
        profile = cProfile.Profile(time.process_time) if args.profile else None
        load_before, backend_before, began = load(), backend_cpu(name), time.process_time()
        with counting(app.extensions["nurture"].engine) as sent:
            if profile is not None:
                profile.enable()
            post(bodies)
            if profile is not None:
                profile.disable()
        app_cpu, backend = time.process_time() - began, backend_cpu(name) - backend_before
        n = args.events
        print(
            f"{n} single events, one after the other (load average before {load_before}):"
            f" this process {app_cpu / n * 1e6:.0f} us CPU/event, PostgreSQL backends"
            f" {backend / n * 1e6:.0f} us CPU/event, {len(sent) / n:.2f} statements/event"
        )
        for statement, count in Counter(s.split("\n")[0][:100] for s in sent).most_common(8):
            print(f"  {count / n:5.2f}  {statement}")
        app.extensions["nurture"].close()
        if profile is not None:
            stats = pstats.Stats(profile).sort_stats("cumulative")
            stats.print_stats(f"{ROOT}/(engine|webapp)", args.top)
    finally:
        drop(name)


if __name__ == "__main__":
    main()
