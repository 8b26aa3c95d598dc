"""``nurture import prospects.csv``: bring prospects in from a CRM export."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import click

from webapp.cli import common


@click.command("import")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate every row; change nothing.")
def import_command(csv_path: Path, dry_run: bool) -> None:
    """Upsert prospects from a CSV (header: email, first_name, status, lost_reason, ...).

    Columns that are not built-in fields become custom attributes. Each row is its own
    transaction, so one bad row is reported with its line number and the rest still load.
    """
    from engine.exceptions import InvalidInputError, NurtureError
    from engine.services.prospects import upsert_prospect
    from engine.services.schemas import ProspectInput, parse_input

    factory = None if dry_run else common.uow_factory()
    created = updated = enrolled = 0
    errors: list[str] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in reader.fieldnames:
            raise click.ClickException(f"{csv_path}: the header needs an 'email' column")
        for row in reader:
            line = reader.line_num
            try:
                data = parse_input(ProspectInput, _row_payload(row))
            except InvalidInputError as exc:
                errors.append(f"{csv_path}:{line}: {exc}")
                continue
            if factory is None:
                continue
            try:
                result = upsert_prospect(factory(), data, common.now())  # type: ignore[arg-type]
            except NurtureError as exc:  # e.g. an address erased at the person's request
                errors.append(f"{csv_path}:{line}: {exc}")
                continue
            created += result.created
            updated += not result.created
            enrolled += result.report.enrolled
    for error in errors:
        click.echo(error, err=True)
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"{verb}: {created} created, {updated} updated, {enrolled} enrolled, {len(errors)} rejected"
    )
    if errors:
        raise SystemExit(1)


def _row_payload(row: dict[str, Any]) -> dict[str, Any]:
    from engine.services.schemas import ProspectInput

    known = set(ProspectInput.model_fields) - {"attributes"}
    payload: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            continue
        name = key.strip().lower()
        value = (value or "").strip()
        if value == "":
            continue
        if name in known:
            payload[name] = value
        else:
            attributes[name.removeprefix("attributes.")] = value
    if attributes:
        payload["attributes"] = attributes
    return payload
