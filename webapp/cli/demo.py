"""``nurture demo``: load a realistic demo workspace into the configured database."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import event

from webapp.cli import common

if TYPE_CHECKING:
    from engine.clock import ManualClock
    from engine.runtime import Runtime
    from engine.services.demo import DemoReport


def _no_fsync_per_commit(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _demo_runtime(clock: ManualClock) -> Runtime:
    """The configured database, with nothing that leaves this machine: no SMTP (the local
    outbox), no webhook, no escalation address, no Redis (an in-process queue and rate
    limiter), and no domain to protect from a burst."""
    from engine.runtime import Runtime

    settings = common.settings().with_overrides(
        smtp_url=None,
        webhook_url=None,
        escalation_email=None,
        redis_url=None,
        send_rate_per_domain=1000.0,
    )
    runtime = Runtime.from_settings(settings, clock=clock)
    if runtime.engine.dialect.name == "sqlite":
        # WAL with synchronous=NORMAL: a commit no longer waits for the disk (the demo makes
        # ~8,000 of them), and a crash loses at most the last ones of a demo run again.
        event.listen(runtime.engine, "connect", _no_fsync_per_commit)
    return runtime


@click.command("demo")
@click.option("--prospects", default=300, show_default=True, type=click.IntRange(10, 5000))
@click.option("--days", default=60, show_default=True, type=click.IntRange(7, 180))
@click.option("--seed", default=2026, show_default=True, type=int, help="Same seed, same demo.")
def demo_command(prospects: int, days: int, seed: int) -> None:
    """Fill an empty database with a demo workspace made by the engine itself.

    Made-up prospects lost on price, on timing and after a demo arrive over DAYS virtual
    days ending now; the real tick, sending (to the local outbox, never SMTP), tracking,
    scoring and handoffs run on a virtual clock, and sales accept or reject the leads.
    Refuses a database that already has prospects.
    """
    from engine.clock import ManualClock
    from engine.exceptions import ConflictError, NotFoundError
    from engine.services.demo import load_demo
    from webapp.cli.run import init_command

    init_command.callback(no_sync=False)  # type: ignore[misc]
    clock = ManualClock(common.now() - timedelta(days=days))
    runtime = _demo_runtime(clock)
    began = time.monotonic()
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # a line per tick is noise here
        logging.getLogger("engine").setLevel(logging.WARNING)

    def progress(day: int, total: int) -> None:
        if day % 10 == 0:
            click.echo(f"  day {day} of {total}…")

    try:
        click.echo(f"running {days} virtual days with {prospects} prospects (seed {seed})")
        report = load_demo(
            runtime.uow,
            runtime.mailer,
            runtime.webhook,
            clock,
            days=days,
            count=prospects,
            seed=seed,
            progress=progress,
        )
    except (ConflictError, NotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()
    click.echo(
        f"demo workspace ready in {time.monotonic() - began:.0f} s: {report.prospects} "
        f"prospects, {report.emails_sent} emails in {runtime.settings.outbox_dir}"
    )
    _print_report(report)


def _print_report(report: DemoReport) -> None:
    for name, count in report.events.items():
        click.echo(f"  {count:6d}  {name}")
    handoffs = ", ".join(f"{n} {status}" for status, n in sorted(report.handoffs.items()))
    click.echo(f"handoffs: {handoffs or 'none'}")
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items()))
    click.echo(f"prospects now: {statuses}")
    if report.rejections:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(report.rejections.items()))
        click.echo(f"sent back by sales: {reasons}")
