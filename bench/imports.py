"""CSV import: rows/s of the batched import service, vs one upsert per row.

    python bench/imports.py [--rows 100000] [--baseline-rows 2000] [--database postgresql]

A generated CRM export (12 columns: the prospect fields plus two custom attributes; 60%
closed-lost on price, budget, timing or no decision, 20% not ready, 20% leads; one row in
200 refused: a bad address, a NUL, an unknown status) is imported into a fresh database
holding the shipped sequences, so most rows also enroll and queue their first email:

* ours: ``upload_import`` (decode, count), ``dry_run``, then ``run_import`` (batches of
  ``BATCH_ROWS`` per transaction), exactly what the background job runs;
* baseline: ``upsert_prospect`` per row, one transaction each (what ``nurture import``
  did before), on the first ``--baseline-rows`` rows of the same file, in a second fresh
  database.

Benchmarks print numbers; tests never assert on time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.mail.catalog import FileTemplateCatalog  # noqa: E402
from engine.services.imports import (  # noqa: E402
    BATCH_ROWS,
    dry_run,
    run_import,
    start_import,
    upload_import,
)
from engine.services.prospects import upsert_prospect  # noqa: E402
from engine.services.sequences import sync_sequences  # noqa: E402
from engine.services.template_sync import sync_templates  # noqa: E402
from engine.store import (  # noqa: E402
    Enrollment,
    Message,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
HEADER = (
    "email,first_name,last_name,company,title,country,status,lost_reason,deal_size,owner,"
    "industry,employees"
)
FIRST = ["Ana", "Bo", "Chen", "Dara", "Emil", "Fatima", "Gus", "Hana", "Ivo", "José", "Zofia"]
LAST = ["Lopez", "Nowak", "Okafor", "Schmidt", "Tanaka", "Quartermaine", "Müller", "Rossi"]
STATUSES = ["closed_lost"] * 6 + ["not_ready"] * 2 + ["lead"] * 2
REASONS = ["price", "budget", "timing", "no_decision"]


def generate(rows: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        status = rng.choice(STATUSES)
        reason = rng.choice(REASONS) if status == "closed_lost" else ""
        email = f"person{i}@company{i % 5000}.example"
        first = rng.choice(FIRST)
        if i % 200 == 199:  # one row in 200 is refused, three ways
            email, first, status = [
                (f"person{i}-at-company.example", first, status),
                (email, "Nu\x00ll", status),
                (email, first, "Closed Lost!"),
            ][i // 200 % 3]
        lines.append(
            f"{email},{first},{rng.choice(LAST)},Company {i % 5000},Head of Ops,DE,"
            f"{status},{reason},{rng.randrange(1000, 90000)},rep{i % 20}@seller.example,"
            f"{rng.choice(['retail', 'saas', 'logistics'])},{rng.randrange(10, 5000)}"
        )
    return ("\n".join(lines) + "\n").encode()


def fresh_database(kind: str, tag: str) -> str:
    if kind == "postgresql":
        name = f"nurture_bench_import_{tag}_{os.getpid()}"
        with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1/{name}"
    else:
        path = Path("/tmp") / f"nurture-bench-import-{tag}-{os.getpid()}.sqlite3"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    upgrade(url)
    factory = make_session_factory(make_engine(url))
    uow = lambda: UnitOfWork(factory)  # noqa: E731
    sync_templates(uow(), ROOT / "templates", NOW)
    sync_sequences(uow, [ROOT / "sequences"], FileTemplateCatalog(ROOT / "templates"), NOW)
    return url


def drop(kind: str, url: str) -> None:
    if kind == "postgresql":
        name = url.rsplit("/", 1)[1]
        with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_cpu(url: str) -> float:
    """CPU seconds the PostgreSQL backends serving ``url``'s database have used (read from
    /proc: the server runs on this machine). With the load at 5-15 on two cores, wall time
    mostly measures the neighbours; CPU time measures the work."""
    if not url.startswith("postgresql"):
        return 0.0
    name = url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
        pids = [
            r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [name])
        ]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall, client CPU and server CPU seconds of one phase."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.start = (time.perf_counter(), time.process_time(), server_cpu(url))

    def read(self) -> tuple[float, float, float]:
        wall, client, server = time.perf_counter(), time.process_time(), server_cpu(self.url)
        w0, c0, s0 = self.start
        self.start = (wall, client, server)
        return wall - w0, client - c0, server - s0


def ours(url: str, data: bytes) -> dict[str, tuple[float, float, float] | int]:
    factory = make_session_factory(make_engine(url))
    uow = lambda: UnitOfWork(factory)  # noqa: E731
    with uow() as unit:  # the pool's connection is up, so the meter sees its backend
        unit.session.execute(select(1))
    meter = Meter(url)
    view = upload_import(uow(), "crm.csv", data, "bench", NOW)
    upload = meter.read()
    report = dry_run(uow(), view.id)
    checked = meter.read()
    start_import(uow(), view.id, "bench", NOW)
    done = run_import(uow, view.id, lambda: NOW)
    ran = meter.read()
    with uow() as unit:
        enrollments = unit.session.scalar(select(func.count()).select_from(Enrollment))
        messages = unit.session.scalar(select(func.count()).select_from(Message))
    print(
        f"ours: {done.total_rows:,} rows: {done.created:,} created, {done.enrolled:,} enrolled "
        f"({enrollments:,} enrollments, {messages:,} emails queued), {done.problems:,} refused "
        f"(dry run: {report.bad:,})"
    )
    return {"upload": upload, "dry_run": checked, "run": ran, "rows": done.total_rows}


def baseline(url: str, data: bytes, rows: int) -> tuple[float, float, float]:
    from engine.services.imports.mapping import suggest_mapping
    from engine.services.imports.rows import judge_rows

    factory = make_session_factory(make_engine(url))
    text = data.decode()
    headers = HEADER.split(",")
    judged = [r for r in judge_rows(text, headers, suggest_mapping(headers)) if r.data]
    with UnitOfWork(factory) as unit:
        unit.session.execute(select(1))
    meter = Meter(url)
    for row in judged[:rows]:
        upsert_prospect(UnitOfWork(factory), row.data, NOW)  # type: ignore[arg-type]
    return meter.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {args.database}, batches of {BATCH_ROWS:,}"
    )
    data = generate(args.rows)
    print(f"file: {args.rows:,} rows, {len(data) / 1_048_576:.1f} MB")
    url = fresh_database(args.database, "ours")
    try:
        figures = ours(url, data)
    finally:
        drop(args.database, url)
    rows = int(figures["rows"])  # type: ignore[arg-type]
    wall, client, server = figures["run"]  # type: ignore[misc]
    print(
        f"ours: upload {_phase(figures['upload'])}; dry run {_phase(figures['dry_run'])}; "
        f"run {_phase(figures['run'])} = {rows / wall:,.0f} rows/s wall, "
        f"{rows / (client + server):,.0f} rows per CPU second"
    )
    if args.baseline_rows:
        url = fresh_database(args.database, "base")
        try:
            b_wall, b_client, b_server = baseline(url, data, args.baseline_rows)
        finally:
            drop(args.database, url)
        base = args.baseline_rows / b_wall
        base_cpu = args.baseline_rows / (b_client + b_server)
        print(
            f"baseline: {args.baseline_rows:,} rows one upsert each: "
            f"{_phase((b_wall, b_client, b_server))} = {base:,.0f} rows/s wall "
            f"({args.rows / base:,.0f} s for {args.rows:,}), {base_cpu:,.0f} rows per CPU "
            f"second; ours is {rows / wall / base:.1f}x (wall), "
            f"{rows / (client + server) / base_cpu:.1f}x (CPU)"
        )
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def _phase(figures: tuple[float, float, float]) -> str:
    wall, client, server = figures
    return f"{wall:.1f} s (CPU: client {client:.1f} s, server {server:.1f} s)"


if __name__ == "__main__":
    main()
