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


def ours(url: str, data: bytes) -> dict[str, float]:
    factory = make_session_factory(make_engine(url))
    uow = lambda: UnitOfWork(factory)  # noqa: E731
    t0 = time.perf_counter()
    view = upload_import(uow(), "crm.csv", data, "bench", NOW)
    t1 = time.perf_counter()
    report = dry_run(uow(), view.id)
    t2 = time.perf_counter()
    start_import(uow(), view.id, "bench", NOW)
    done = run_import(uow, view.id, lambda: NOW)
    t3 = time.perf_counter()
    with uow() as unit:
        enrollments = unit.session.scalar(select(func.count()).select_from(Enrollment))
        messages = unit.session.scalar(select(func.count()).select_from(Message))
    print(
        f"ours: {done.total_rows:,} rows: {done.created:,} created, {done.enrolled:,} enrolled "
        f"({enrollments:,} enrollments, {messages:,} emails queued), {done.problems:,} refused "
        f"(dry run: {report.bad:,})"
    )
    return {"upload": t1 - t0, "dry_run": t2 - t1, "run": t3 - t2, "rows": done.total_rows}


def baseline(url: str, data: bytes, rows: int) -> float:
    from engine.services.imports.mapping import suggest_mapping
    from engine.services.imports.rows import judge_rows

    factory = make_session_factory(make_engine(url))
    text = data.decode()
    headers = HEADER.split(",")
    judged = [r for r in judge_rows(text, headers, suggest_mapping(headers)) if r.data]
    t0 = time.perf_counter()
    for row in judged[:rows]:
        upsert_prospect(UnitOfWork(factory), row.data, NOW)  # type: ignore[arg-type]
    return time.perf_counter() - t0


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
    rate = figures["rows"] / figures["run"]
    print(
        f"ours: upload {figures['upload']:.1f} s, dry run {figures['dry_run']:.1f} s, "
        f"run {figures['run']:.1f} s = {rate:,.0f} rows/s"
    )
    if args.baseline_rows:
        url = fresh_database(args.database, "base")
        try:
            spent = baseline(url, data, args.baseline_rows)
        finally:
            drop(args.database, url)
        base = args.baseline_rows / spent
        print(
            f"baseline: {args.baseline_rows:,} rows one upsert each in {spent:.1f} s = "
            f"{base:,.0f} rows/s ({args.rows / base:,.0f} s for {args.rows:,}); "
            f"ours is {rate / base:.1f}x"
        )


if __name__ == "__main__":
    main()
