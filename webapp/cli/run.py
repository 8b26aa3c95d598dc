"""``nurture init|up|worker|scheduler``: running the engine, from a laptop to production."""

from __future__ import annotations

import signal
import threading

import click

from webapp.cli import common


@click.command("init")
@click.option("--no-sync", is_flag=True, help="Only migrate; load no templates or sequences.")
def init_command(no_sync: bool) -> None:
    """Create or upgrade the database, then load the templates and sequences folders."""
    from engine.services.sequences import sync_sequences
    from engine.store import current_revision

    settings = common.settings()
    factory = common.uow_factory(migrate=True)
    click.echo(f"database ready at revision {current_revision(settings.database_url)}")
    if no_sync:
        return
    common.sync_templates_folder(factory)
    templates = common.stored_templates(factory)
    report = sync_sequences(factory, [settings.sequences_dir], templates, common.now())  # type: ignore[arg-type]
    for problem in report.problems:
        click.echo(str(problem), err=True)
    click.echo(
        f"sequences: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged; scoring rules: {report.scoring}"
    )


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: long-running commands stop cleanly on it."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        click.echo(f"received signal {signum}: shutting down", err=True)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def up_command(host: str, port: int) -> None:
    """Run everything in one process: web app, scheduler and an in-process worker."""
    from webapp.cli.serve import serve_all_in_one

    settings = common.settings()
    init_command.callback(no_sync=False)  # type: ignore[misc]

    def ready(base_url: str) -> None:
        shown = base_url.replace("://0.0.0.0:", "://127.0.0.1:")
        click.echo(f"Nurture is up on {shown}/ (health: /healthz); Ctrl-C stops it")
        _print_setup_link(shown)

    serve_all_in_one(settings, host, port, stop_on_signals(), on_ready=ready)


def _print_setup_link(base_url: str) -> None:
    """On an empty user table, the one-time link where the first admin picks a password."""
    from engine.services.signin import needs_setup
    from webapp.auth import SETUP_LINK_MAX_AGE, setup_link

    if not needs_setup(common.uow_factory(migrate=False)()):  # type: ignore[arg-type]
        return
    hours = int(SETUP_LINK_MAX_AGE.total_seconds() // 3600)
    click.echo(
        "\nFirst run: nobody can sign in yet. Open this link to create the admin account\n"
        f"(it works once, for {hours} hours; restart for a new one):\n\n"
        f"    {setup_link(base_url, common.settings().secret_key)}\n"
    )


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option(
    "--fork/--no-fork",
    default=False,
    show_default=True,
    help="Run each job in a forked process (isolation) instead of in the worker itself "
    "(compiled templates and the SMTP connection are then reused across jobs).",
)
def worker_command(burst: bool, fork: bool) -> None:
    """Run an RQ worker on NURTURE_REDIS_URL (several may run, on several hosts)."""
    from rq import SimpleWorker, Worker

    from workers.worker import run_rq_worker

    settings = common.settings()
    if not settings.redis_url:
        raise click.ClickException(
            "NURTURE_REDIS_URL is not set: RQ workers need Redis. On a laptop, `nurture up` "
            "runs an in-process worker instead."
        )
    run_rq_worker(settings, burst=burst, worker_class=Worker if fork else SimpleWorker)


@click.command("scheduler")
@click.option(
    "--interval", type=float, default=None, help="Seconds between ticks (default: settings)."
)
def scheduler_command(interval: float | None) -> None:
    """Enqueue the periodic tick (run one per deployment; extra ones are harmless)."""
    from engine.runtime import Runtime
    from workers.scheduler import run_scheduler

    settings = common.settings()
    runtime = Runtime.from_settings(settings)
    run_scheduler(runtime, interval or settings.tick_interval_seconds, stop_on_signals())
