"""``nurture prospects erase|export EMAIL``: a person's data-protection requests, by address.

The address is what a person writes in with ("delete everything you have on
ana@example.com"); the commands find the prospect by it and call the privacy services.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from webapp.cli import common


@click.group("prospects")
def prospects_group() -> None:
    """Answer a person's requests: erase them (GDPR art. 17), export their data (art. 15/20)."""


@prospects_group.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def erase_command(email: str, yes: bool) -> None:
    """Erase the person with this address: their personal data is removed everywhere, the
    counts they are part of stay, and the address is kept only as a hash so that it is
    never emailed, or added, again. This cannot be undone."""
    from engine.mail.forget import local_outbox
    from engine.services.audit import CLI_ACTOR
    from engine.services.privacy import erase_prospect, erased_record
    from engine.services.prospects import prospect_id_for

    uow = common.uow_factory()
    prospect_id = prospect_id_for(uow(), email)  # type: ignore[arg-type]
    if prospect_id is None:
        when = erased_record(uow(), email)  # type: ignore[arg-type]
        if when is not None:
            click.echo(f"{email} was already erased on {when:%Y-%m-%d}; nothing else is held.")
            return
        raise click.ClickException(f"no prospect with the address {email}")
    if not yes:
        click.confirm(
            f"Erase prospect {prospect_id} ({email}) for good? This cannot be undone", abort=True
        )
    report = erase_prospect(
        uow(),  # type: ignore[arg-type]
        prospect_id,
        common.now(),
        actor=CLI_ACTOR,
        outbox_dir=local_outbox(common.settings()),
    )
    scrubbed = ", ".join(f"{table} {count}" for table, count in report.rows.items() if count)
    click.echo(f"erased prospect {prospect_id}: rows scrubbed: {scrubbed}")
    if report.outbox_files:
        click.echo(f"removed {report.outbox_files} email(s) from the local outbox")


@prospects_group.command("export")
@click.argument("email")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the JSON here instead of standard output.",
)
def export_command(email: str, output: Path | None) -> None:
    """Everything held about the person with this address, as JSON."""
    from engine.services.audit import CLI_ACTOR
    from engine.services.privacy import export_prospect
    from engine.services.privacy.erase import ERASED_EXIT_REASON
    from engine.services.privacy.export import EXPORT_FORMAT, erased_record
    from engine.services.prospects import prospect_id_for

    uow = common.uow_factory()
    prospect_id = prospect_id_for(uow(), email)  # type: ignore[arg-type]
    if prospect_id is not None:
        document = export_prospect(uow(), prospect_id, common.now(), actor=CLI_ACTOR)  # type: ignore[arg-type]
    else:
        when = erased_record(uow(), email)  # type: ignore[arg-type]
        if when is None:
            raise click.ClickException(f"no prospect with the address {email}")
        document = {
            "format": EXPORT_FORMAT,
            "generated_at": common.now().isoformat(),
            "subject": {"email": email.strip().lower()},
            "erased": {
                "at": when.isoformat(),
                "why": ERASED_EXIT_REASON,
                "held": "only a SHA-256 hash of the address, on the suppression list, so "
                "that it is never emailed again",
            },
        }
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
