"""``nurture sequences validate|sync|list`` and ``nurture simulate``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from webapp.cli import common


@click.group("sequences")
def sequences_group() -> None:
    """Check, load and list nurture sequences."""


@sequences_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def validate_command(paths: tuple[Path, ...]) -> None:
    """Check sequence and scoring files; print file:line problems (and warnings); exit 1
    if there are problems."""
    from engine.spec.loader import load_specs

    targets = list(paths) or [common.settings().sequences_dir]
    loaded = load_specs(targets, common.templates())
    for problem in sorted(loaded.problems + loaded.warnings, key=lambda p: (p.file, p.line or 0)):
        click.echo(str(problem), err=True)
    files = _count_files(targets)
    if loaded.problems:
        raise click.ClickException(f"{len(loaded.problems)} problem(s) in {files} file(s)")
    warned = f", {len(loaded.warnings)} warning(s)" if loaded.warnings else ""
    click.echo(f"{files} file(s) OK{warned}")


def _count_files(targets: list[Path]) -> int:
    from engine.spec.loader import spec_files

    return len(spec_files(targets)[0])


@sequences_group.command("sync")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace templates and sequences whose current version was published in the editor.",
)
def sync_command(paths: tuple[Path, ...], force: bool) -> None:
    """Store changed template files, then changed sequence files, as new versions
    (invalid files are skipped)."""
    from engine.services.sequences import sync_sequences

    factory = common.uow_factory()
    templates_ok = common.sync_templates_folder(factory, force)
    targets = list(paths) or [common.settings().sequences_dir]
    report = sync_sequences(
        factory,  # type: ignore[arg-type]
        targets,
        common.stored_templates(factory),
        common.now(),
        force=force,
    )
    for problem in report.problems:
        click.echo(str(problem), err=True)
    click.echo(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, kept from the editor {len(report.conflicts)}, "
        f"invalid {len(report.problems) - len(report.conflicts)} problem(s); "
        f"scoring rules: {report.scoring}"
    )
    for label, keys in (("created", report.created), ("updated", report.updated)):
        for key in keys:
            click.echo(f"  {label}: {key}")
    if report.problems or not templates_ok:
        sys.exit(1)


@sequences_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory: Path) -> None:
    """Write every sequence's running version to DIRECTORY/<key>.yaml, byte-identical to
    what was published (in the web editor or by a sync), so git can keep the record."""
    from engine.services.sequences import export_sequences

    written = export_sequences(common.uow_factory()(), directory)  # type: ignore[arg-type]
    for name in written:
        click.echo(f"  {directory / name}")
    click.echo(f"exported {len(written)} sequence(s) to {directory}")


@sequences_group.command("list")
def list_command() -> None:
    """Show the sequences in the database with their current version."""
    from engine.services.sequences import list_sequences

    rows = list_sequences(common.uow_factory()())  # type: ignore[operator]
    if not rows:
        click.echo("no sequences yet: run `nurture sequences sync`")
    for row in rows:
        state = "active" if row.active else "paused"
        click.echo(f"{row.key:<32} v{row.version or '-':<4} {state:<7} {row.name}")


@click.command("simulate")
@click.argument("sequence")
@click.option("--prospect", "prospect_arg", default="{}", help="JSON object, or a JSON/YAML file.")
@click.option("--events", "events_arg", default=None, help="JSON/YAML file of scripted events.")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650))
@click.option("--start", default=None, help="ISO start time (default: next Monday 10:00 UTC).")
@click.option(
    "--variant",
    "variant_args",
    multiple=True,
    metavar="SPLIT=VARIANT",
    help="Send the prospect down this variant of a split (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
def simulate_command(
    sequence: str,
    prospect_arg: str,
    events_arg: str | None,
    days: int,
    start: str | None,
    variant_args: tuple[str, ...],
    as_json: bool,
) -> None:
    """Rehearse SEQUENCE (a file, or a key in the sequences folder) on a virtual clock.

    A split draws the variant a real prospect would get when --prospect has its "id";
    --variant SPLIT=VARIANT rehearses a chosen path instead.
    """
    from engine.core.simulate import SimEvent, format_timeline, simulate
    from engine.spec.errors import SpecError
    from engine.spec.loader import load_sequence
    from engine.spec.simulation import SCRIPT, check_forced_variants

    path = _sequence_path(sequence)
    try:
        spec = load_sequence(path, common.templates())
    except SpecError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{path} is not valid") from None
    prospect = _load_mapping(prospect_arg, "--prospect")
    _check_prospect_id(prospect)
    forced = _forced_variants(variant_args)
    problems = check_forced_variants(spec, forced)
    if problems:
        raise click.ClickException("--variant: " + "; ".join(problems))
    raw_events = _load_data(events_arg, "--events") if events_arg else []
    try:
        script = SCRIPT.validate_python(raw_events)
    except ValidationError as exc:
        raise click.ClickException(f"--events: {_first_error(exc)}") from None
    begin = _start(start)
    sim = simulate(
        spec,
        prospect,
        [SimEvent(e.event, e.at, e.after, e.delay, e.data, e.machine) for e in script],
        begin,
        days,
        common.settings().default_timezone,
        forced,
    )
    if as_json:
        click.echo(json.dumps(_as_json(sim), indent=2, default=str))
    else:
        click.echo(format_timeline(sim, begin))


def _sequence_path(sequence: str) -> Path:
    """A file, or the sequences folder's file for a key: by file name first, else by the
    ``key`` inside (files are found as ``validate`` and ``sync`` find them)."""
    from engine.spec.loader import load_specs, spec_files

    path = Path(sequence)
    if path.is_file():
        return path
    folder = common.settings().sequences_dir
    files, _ = spec_files([folder])
    named = [file for file in files if file.stem == sequence]
    if named:
        return named[0]
    for found, spec in load_specs([folder], common.templates()).sequences.items():
        if spec.key == sequence:
            return found
    raise click.ClickException(f"no sequence file or key {sequence!r}")


def _load_data(arg: str, option: str) -> Any:
    text = arg
    path = Path(arg)
    if not arg.lstrip().startswith(("{", "[")) and path.is_file():
        text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{option}: not JSON or YAML: {exc}") from None


def _load_mapping(arg: str, option: str) -> dict[str, Any]:
    data = _load_data(arg, option)
    if not isinstance(data, dict):
        raise click.ClickException(f"{option}: expected a JSON object of prospect fields")
    return data


def _check_prospect_id(prospect: dict[str, Any]) -> None:
    """The id decides a split's draw, so it must be an id a prospect could have."""
    from engine.services.validation import MAX_ID

    if "id" not in prospect:
        return
    value = prospect["id"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise click.ClickException(
            f"--prospect: id {value!r} is not a prospect id: a whole number from 1 to {MAX_ID}"
        )


def _forced_variants(args: tuple[str, ...]) -> dict[str, str]:
    forced: dict[str, str] = {}
    for arg in args:
        split_id, sep, variant = arg.partition("=")
        if not sep or not split_id.strip() or not variant.strip():
            raise click.ClickException(
                f"--variant {arg!r}: write SPLIT=VARIANT, like --variant offer=calculator"
            )
        forced[split_id.strip()] = variant.strip()
    return forced


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"item {where}: {err['msg'].removeprefix('Value error, ')}"


def _start(value: str | None) -> datetime:
    if value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise click.ClickException(f"--start {value!r} is not an ISO date/time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    today = common.now().replace(hour=10, minute=0, second=0, microsecond=0)
    from datetime import timedelta

    return today + timedelta(days=(7 - today.weekday()) % 7 or 7)


def _as_json(sim: Any) -> dict[str, Any]:
    return {
        "enrolled": sim.enrolled,
        "outcome": sim.outcome,
        "timeline": [
            {
                "at": line.at.isoformat(),
                "kind": line.kind,
                "step": line.step_id,
                "detail": line.detail,
                "send_at": line.send_at.isoformat() if line.send_at else None,
            }
            for line in sim.lines
        ],
    }
