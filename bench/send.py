"""Throughput of the send path end to end, against a bare smtplib loop, into smtp-sink.

    python bench/send.py [--messages 2000] [--database sqlite|postgresql]
    python bench/send.py --template-dir bench/fixtures --template large

Both paths deliver to Postfix's ``smtp-sink`` (Debian package ``postfix``), started here on
127.0.0.1 and a free port: it accepts and discards mail in C, so the server never is the
bottleneck (aiosmtpd, in Python, would be). Measured in the same run, alternating rounds,
best round kept:

* ours: ``send_batch`` over batches of ``send_batch_size`` ids, one after the other, in
  one process with one ``Mailer`` (one SMTP connection, reused), i.e. what a worker does
  for each ``send_messages_job``: claim, load the policy's facts, decide, render, track,
  build MIME, mark ``transmitting``, SMTP, record ``sent`` and an ``email.sent`` event;
* baseline: ``smtplib.SMTP.sendmail`` over one connection, sending bytes built before the
  clock starts (the very bytes ``compose`` makes for these messages): the floor for
  "send N emails from Python", with no database, no rendering and no bookkeeping;
* transport: our ``SmtpTransport.send`` over the same pre-built bytes, to tell our SMTP
  client's cost apart from smtplib's.

* rq (when Redis answers): the same batches as real RQ jobs drained by an RQ
  ``SimpleWorker`` in burst mode (what ``nurture worker`` runs), on a Redis database of
  its own (db 11 by default, which must be empty, and is flushed afterwards).

Each path is reported as wall time (throughput) and as this process's CPU time, which
moves much less when other processes compete for the cores. Then one more round of ours
with its phases timed (claim, policy facts, compose, SMTP, the per-message records).

Benchmarks print numbers; nothing here asserts on time (tests never do).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import send_processes  # bench/, the directory of this script
from send_paths import (
    Phases,
    RQRounds,
    Timing,
    compose_inputs,
    db_round_trip_us,
    open_rq,
    prebuild,
    run_compose_smtplib,
    run_ours,
    run_smtplib,
    run_transport,
)
from send_processes import WARM
from send_setup import (
    INSTALL_HINT,
    database,
    find_smtp_sink,
    machine,
    postgres_reachable,
    seed,
    smtp_sink,
)

from engine.clock import SystemClock
from engine.config import Settings
from engine.mail.catalog import FileTemplateCatalog
from engine.runtime import build_mailer
from engine.store import UnitOfWork, make_engine, make_session_factory

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
WARMUP = 100  # messages sent before any timing: compiles the template, opens connections


# --- report ---------------------------------------------------------------------------


def row(label: str, wall_us: float, cpu_us: float, base: tuple[float, float] | None) -> str:
    """One line of the results table; ``base`` is the baseline's (wall, CPU) per message."""
    wall_x = f"{wall_us / base[0]:7.2f}x" if base else ""
    cpu_x = f"{cpu_us / base[1]:9.2f}x" if base else ""
    line = f"{label:<46}{wall_us:9.0f} {1e6 / wall_us:7.0f} {wall_x:>8} {cpu_us:8.0f} {cpu_x:>10}"
    return line.rstrip()


def report_scaling(
    settings_kwargs: dict[str, Any], pending: list[list[int]], n: int, rounds: int
) -> None:
    """One sending process against two at once (``send_processes``), best round each."""
    load = os.getloadavg()[0]
    one, two = send_processes.scaling(settings_kwargs, pending, n, rounds)
    best_one = max(r.rate for r in one)
    best_two = max(r.rate for r in two)
    print(
        f"worker processes (fresh processes, released together, {n:,} messages each): "
        f"one {best_one:.0f}/s, two {best_two:.0f}/s: {best_two / best_one:.2f}x "
        f"(target: at least 1.7x); rounds one {', '.join(f'{r.rate:.0f}' for r in one)}, "
        f"two {', '.join(f'{r.rate:.0f}' for r in two)}; load average (1 min) "
        f"{load:.2f} before, {os.getloadavg()[0]:.2f} after"
    )


def report_rounds(
    runs: dict[str, list[Timing]],
    n: int,
    rq: RQRounds | None,
    rq_note: str | None,
    load: float,
) -> None:
    """The table of the alternating rounds (best round of each path, per message), the
    ratio to issue #12's baseline, every round's figure and the load around them."""
    wall = {k: min(t.wall for t in v) / n * 1e6 for k, v in runs.items()}
    cpu = {k: min(t.cpu for t in v) / n * 1e6 for k, v in runs.items()}
    # Issue #12's baseline: the same compose + bare smtplib, the irreducible work.
    base = (wall["compose+smtplib"], cpu["compose+smtplib"])
    labels = {
        "ours": "ours: send_batch end to end",
        "compose+smtplib": "baseline: compose + smtplib sendmail",
        "smtplib": "smtplib sendmail alone, pre-built bytes",
        "transport": "our SmtpTransport.send, same bytes",
        "rq": f"ours as RQ jobs, SimpleWorker (Redis {rq.version if rq else ''})",
    }
    print(
        f"{'best round, per message':<46}{'wall us':>9} {'msg/s':>7} "
        f"{'x base':>8} {'CPU us':>8} {'CPU x base':>10}"
    )
    for key in runs:
        baseline = key == "compose+smtplib"
        print(row(labels[key], wall[key], cpu[key], None if baseline else base))
    if rq_note:
        print(f"RQ: {rq_note}")
    print(
        f"ratio ours / baseline (compose + smtplib), time per message: "
        f"{wall['ours'] / base[0]:.2f}x (CPU of this process: "
        f"{cpu['ours'] / base[1]:.2f}x); ours sends {base[0] / wall['ours']:.0%} "
        f"of the baseline's throughput (target: at least 50 %)"
    )
    print(
        f"bookkeeping per message (ours minus the baseline): "
        f"{wall['ours'] - base[0]:.0f} us wall, {cpu['ours'] - base[1]:.0f} us CPU; "
        f"ours / smtplib alone on pre-built bytes: "
        f"{wall['ours'] / wall['smtplib']:.2f}x"
    )
    print(
        "all rounds, wall us/message: "
        + "; ".join(
            f"{k} {', '.join(f'{t.wall / n * 1e6:.0f}' for t in v)}" for k, v in runs.items()
        )
    )
    print(
        f"load average (1 min) before and after the rounds: {load:.2f}, "
        f"{os.getloadavg()[0]:.2f} (the machine has {len(os.sched_getaffinity(0))} CPUs)"
    )


def report_phases(
    phases: Phases, timing: Timing, n: int, round_trip_us: float, rq: RQRounds | None
) -> None:
    """Where the time of the phase round went, step by step (wall, share, CPU), with one
    database round trip and, with RQ, what RQ and the Redis rate limiter add for scale."""
    total = timing.wall
    print(
        f"where the time goes, one more round of ours ({total / n * 1e6:.0f} us/message "
        f"wall, {timing.cpu / n * 1e6:.0f} us CPU), us per message:"
    )
    walls = phases.breakdown(total, phases.seconds)
    cpus = phases.breakdown(timing.cpu, phases.cpu)
    print(f"  {'step':<66}{'wall':>8} {'share':>6} {'CPU':>8}")
    for (label, seconds), (_, cpu_seconds) in zip(walls, cpus, strict=True):
        print(
            f"  {label:<66}{seconds / n * 1e6:8.1f} {seconds / total:6.1%} "
            f"{cpu_seconds / n * 1e6:8.1f}"
        )
    print(f"  for scale: one database round trip (driver, SELECT 1): {round_trip_us:.1f} us")
    if rq:
        print(
            f"  RQ around the jobs (drain time outside send_messages_job, best round): "
            f"{min(rq.outside) / n * 1e6:.1f} us/message"
        )
        print(f"  with Redis, RedisRateLimiter.acquire adds {rq.limiter_us(n):.1f} us/message")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line (``--help`` shows the first paragraph of this script's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        help="default: postgresql when --postgres-url answers, else sqlite",
    )
    parser.add_argument(
        "--postgres-url",
        default=ADMIN_URL,
        help="server to create (and drop) a throw-away database on",
    )
    parser.add_argument("--template-dir", type=Path, default=ROOT / "templates")
    parser.add_argument("--template", default="price/value-recap", help="template key")
    parser.add_argument("--redis-url", default=REDIS_URL, help="an empty Redis db for RQ")
    parser.add_argument("--no-rq", action="store_true", help="skip the RQ rounds")
    parser.add_argument("--no-processes", action="store_true", help="skip one process against two")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile the phase round; top N"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    # Killed politely, still drop the throw-away database and stop smtp-sink.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sink = find_smtp_sink()
    if sink is None:
        sys.exit(INSTALL_HINT)
    kind = args.database or ("postgresql" if postgres_reachable(args.postgres_url) else "sqlite")
    template_dir = args.template_dir.resolve()
    n, rounds = args.messages, args.rounds

    with (
        tempfile.TemporaryDirectory(prefix="nurture-bench-") as tmp,
        smtp_sink(sink, Path(tmp)) as port,
        database(kind, args.postgres_url, Path(tmp)) as db,
    ):
        settings_kwargs: dict[str, Any] = {
            "database_url": db.url,
            "smtp_url": f"smtp+insecure://127.0.0.1:{port}",
            "secret_key": "bench-secret-key",
            "base_url": "https://nurture.example.com",
            "templates_dir": template_dir,
            "frequency_cap": 1_000_000,
            "send_rate_per_domain": 1e9,
        }
        settings = Settings(**settings_kwargs)
        engine = make_engine(db.url)
        session_factory = make_session_factory(engine)

        def uow_factory() -> UnitOfWork:
            return UnitOfWork(session_factory)

        # No Redis in these settings: this mailer gets the local rate limiter, as an
        # embedded install has; the RQ rounds use the production wiring.
        mailer = build_mailer(settings, SystemClock())
        rq = None if args.no_rq else open_rq(settings, args.redis_url, args.template)
        rq_note = rq if isinstance(rq, str) else None
        rq = rq if isinstance(rq, RQRounds) else None
        try:
            slices = 1 + rounds * (2 if rq else 1)  # the phase round, ours, RQ
            # the scaling rounds: one process, then two, each with its own warm-up
            process_slices = 0 if args.no_processes else 3 * rounds
            process_size = WARM + n
            started = time.perf_counter()
            ids = seed(
                session_factory,
                FileTemplateCatalog(template_dir),
                args.template,
                WARMUP + slices * n + process_slices * process_size,
                datetime.now(UTC),
            )
            seeded = time.perf_counter() - started
            warm, rest = ids[:WARMUP], ids[WARMUP:]
            pending = [rest[i * n : (i + 1) * n] for i in range(slices)]
            rest = rest[slices * n :]
            process_pending = [
                rest[i * process_size : (i + 1) * process_size] for i in range(process_slices)
            ]
            batch = settings.send_batch_size

            run_ours(uow_factory, mailer, warm, batch)  # compile, connect, fill caches
            inputs = compose_inputs(uow_factory, mailer, pending[0])
            prebuilt = prebuild(inputs, mailer)
            size = statistics.mean(len(m.raw) for m in prebuilt)
            print(f"machine: {machine(db)}")
            print(
                f"template: {args.template} in {template_dir} -> {size / 1024:.1f} KiB per "
                f"message on average; {n:,} messages per round, batches of {batch}, "
                f"{rounds} rounds (best kept); {len(ids):,} messages seeded in {seeded:.1f} s"
            )

            # Alternating rounds: other tenants of a shared machine only ever add time,
            # and alternating gives every path the same conditions, so ratios hold when
            # absolute numbers drift.
            runs: dict[str, list[Timing]] = {
                "ours": [],
                "compose+smtplib": [],
                "smtplib": [],
                "transport": [],
            }
            if rq:
                runs["rq"] = []
            load = os.getloadavg()[0]
            for _ in range(rounds):
                runs["ours"].append(run_ours(uow_factory, mailer, pending.pop(), batch))
                runs["compose+smtplib"].append(run_compose_smtplib(port, inputs, mailer))
                runs["smtplib"].append(run_smtplib(port, prebuilt))
                runs["transport"].append(run_transport(settings.smtp_url or "", prebuilt))
                if rq:
                    runs["rq"].append(rq.drain(pending.pop()))
            report_rounds(runs, n, rq, rq_note, load)

            phases = Phases()
            profiler = cProfile.Profile() if args.profile else None
            with phases.installed():
                if profiler:
                    profiler.enable()
                timing = run_ours(uow_factory, mailer, pending.pop(), batch)
                if profiler:
                    profiler.disable()
            report_phases(phases, timing, n, db_round_trip_us(engine), rq)
            if profiler:
                stats = pstats.Stats(profiler, stream=sys.stdout)
                stats.sort_stats("tottime").print_stats(args.profile)
            if process_pending:
                report_scaling(settings_kwargs, process_pending, n, rounds)
        finally:
            if rq:
                rq.close()
            mailer.transport.close()
            engine.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
