"""``nurture inbound imap|smtp|receive``: the ways mail that comes back reaches Nurture.

Each one feeds the same service (``engine.services.inbound.receive``), which records a
message once and acts on it once, whichever way (or how often) it arrives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from webapp.cli import common


@click.group("inbound")
def inbound_group() -> None:
    """Read replies, bounces, auto-replies and complaints (docs/inbound.md)."""


def _deliverer(transport: str) -> Callable[[bytes, Sequence[str]], object]:
    """The service, bound to this process's runtime; unfinished messages finished first."""
    from engine.runtime import Runtime
    from engine.services.inbound import process_pending, receive

    common.uow_factory(migrate=True)
    runtime = Runtime.from_settings(common.settings())
    pending = process_pending(runtime.uow(), runtime.clock.now(), runtime.settings)
    if pending:
        click.echo(f"finished {len(pending)} message(s) recorded before a restart", err=True)

    def deliver(raw: bytes, recipients: Sequence[str] = ()) -> object:
        result = receive(
            runtime.uow(),
            raw,
            transport=transport,
            now=runtime.clock.now(),
            settings=runtime.settings,
            envelope_recipients=recipients,
        )
        click.echo(
            f"inbound {result.inbound_id}: {result.kind}, {result.status}"
            + (" (seen before)" if result.duplicate else ""),
            err=True,
        )
        return result

    return deliver


@inbound_group.command("imap")
@click.option("--url", help="imaps://user:pass@host/INBOX (default: NURTURE_INBOUND_IMAP_URL)")
@click.option("--once", is_flag=True, help="Read what is there now, then exit (for cron).")
def imap_command(url: str | None, once: bool) -> None:
    """Read a mailbox: every message is recorded, then moved to the done folder
    (NURTURE_INBOUND_IMAP_DONE_FOLDER); IDLE where the server offers it, else polling."""
    import threading

    from engine.inbound.imap import ImapConfig, ImapPoller
    from webapp.cli.run import stop_on_signals

    settings = common.settings()
    url = url or settings.inbound_imap_url
    if not url:
        raise click.UsageError("set NURTURE_INBOUND_IMAP_URL (or --url) to the mailbox")
    try:
        config = ImapConfig.from_url(
            url,
            done_folder=settings.inbound_imap_done_folder,
            poll_seconds=settings.inbound_imap_poll_seconds,
            max_bytes=settings.inbound_max_bytes,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    deliver = _deliverer("imap")
    stop = threading.Event() if once else stop_on_signals()
    poller = ImapPoller(config, lambda raw: deliver(raw, ()), stop)
    if once:
        with poller.connected() as client:
            moved = poller.drain(client)
        click.echo(f"{moved} message(s) read from {config.folder}")
        return
    click.echo(f"reading {config.folder} on {config.host}:{config.port}; Ctrl-C stops", err=True)
    poller.run()


@inbound_group.command("smtp")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int)
def smtp_command(host: str, port: int) -> None:
    """Receive mail over SMTP (for a relay's transport map); 250 only once recorded."""
    from engine.inbound.smtp import InboundSmtpServer
    from webapp.cli.run import stop_on_signals

    deliver = _deliverer("smtp")
    stop = stop_on_signals()
    with InboundSmtpServer(deliver, host, port, common.settings().inbound_max_bytes):
        click.echo(f"receiving mail on {host}:{port}; Ctrl-C stops", err=True)
        stop.wait()


@inbound_group.command("receive")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--recipient", "recipients", multiple=True, help="The envelope recipient.")
def receive_command(files: tuple[str, ...], recipients: tuple[str, ...]) -> None:
    """Deliver .eml files, or '-' for standard input (a Postfix pipe:
    `| nurture inbound receive - --recipient ${recipient}`)."""
    from engine.exceptions import InvalidInputError

    deliver = _deliverer("cli")
    for name in files:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        try:
            deliver(raw, recipients)
        except InvalidInputError as exc:
            raise click.ClickException(f"{name}: {exc}") from None
