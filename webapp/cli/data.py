"""``nurture import prospects.csv``: bring prospects in from a CRM export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from webapp.cli import common

if TYPE_CHECKING:
    from engine.store import UnitOfWork


@click.command("import")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; change nothing.")
@click.option(
    "--map",
    "overrides",
    multiple=True,
    metavar="COLUMN=TARGET",
    help="Map a column to a prospect field or attributes.<name> (empty TARGET skips it). "
    "Repeatable; other columns are mapped by name.",
)
def import_command(csv_path: Path, dry_run: bool, overrides: tuple[str, ...]) -> None:
    """Upsert prospects from a CSV (UTF-8 or UTF-16; header: email, first_name, status,
    lost_reason, ...).

    Columns that are not prospect fields become custom attributes. Rows are imported in
    batches; every refused row is reported with its line and reason, and the rest load.
    The same service as the web page's import, run here in the foreground.
    """
    from engine.exceptions import NurtureError
    from engine.services.audit import CLI_ACTOR
    from engine.services.imports import (
        MAX_UPLOAD_BYTES,
        discard_import,
        refused_rows,
        run_import,
        set_mapping,
        start_import,
        upload_import,
    )
    from engine.services.imports import dry_run as judge

    if csv_path.stat().st_size > MAX_UPLOAD_BYTES:
        raise click.ClickException(
            f"{csv_path}: {csv_path.stat().st_size:,} bytes; at most {MAX_UPLOAD_BYTES:,} "
            "can be imported at once: split the file"
        )
    factory = cast("Callable[[], UnitOfWork]", common.uow_factory())
    try:
        view = upload_import(
            factory(), csv_path.name, csv_path.read_bytes(), CLI_ACTOR, common.now()
        )
        if overrides:
            view = set_mapping(factory(), view.id, _mapping(view.headers, view.mapping, overrides))
    except NurtureError as exc:
        raise click.ClickException(f"{csv_path}: {exc}") from None
    if dry_run:
        report = judge(factory(), view.id)
        discard_import(factory(), view.id)
        for line, reason in report.refused:
            click.echo(f"{csv_path}:{line}: {reason}", err=True)
        click.echo(
            f"would import: {report.would_create} created, {report.would_update} updated, "
            f"{report.bad} rejected"
        )
        raise SystemExit(1 if report.bad else 0)
    start_import(factory(), view.id, CLI_ACTOR, common.now())
    done = run_import(factory, view.id, common.now)
    for line, reason in refused_rows(factory(), view.id):
        click.echo(f"{csv_path}:{line}: {reason}", err=True)
    click.echo(
        f"imported: {done.created} created, {done.updated} updated, {done.enrolled} enrolled, "
        f"{done.problems} rejected"
    )
    if done.problems:
        raise SystemExit(1)


def _mapping(headers: list[str], suggested: list[str], overrides: tuple[str, ...]) -> list[str]:
    """The suggested mapping with ``COLUMN=TARGET`` overrides applied by column name."""
    mapping = list(suggested)
    for item in overrides:
        column, sep, target = item.partition("=")
        if not sep or column.strip() not in headers:
            raise click.BadParameter(
                f"{item!r}: write COLUMN=TARGET with a column of the file "
                f"({', '.join(headers[:8])})",
                param_hint="--map",
            )
        mapping[headers.index(column.strip())] = target.strip()
    return mapping
