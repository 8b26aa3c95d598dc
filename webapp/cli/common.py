"""What every command needs: settings, a clock, units of work, the template catalog."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

import click

from engine.config import Settings


@cache
def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def now() -> datetime:
    return datetime.now(UTC)


def uow_factory(migrate: bool = True) -> Callable[[], object]:
    """Units of work on the configured database (migrated first: commands just work)."""
    from engine.store import UnitOfWork, make_engine, make_session_factory, upgrade

    url = settings().database_url
    if migrate:
        upgrade(url)
    factory = make_session_factory(make_engine(url))
    return lambda: UnitOfWork(factory)


class RowId(click.ParamType):
    """An id on the command line, held to the API's rule (1 to 2^63-1), so a typo is a usage
    error instead of a database error."""

    name = "id"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        from engine.exceptions import InvalidInputError
        from engine.services.validation import check_id

        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        try:
            return check_id(param.name if param and param.name else "id", str(value))
        except InvalidInputError as exc:
            self.fail(str(exc), param, ctx)


ROW_ID = RowId()


def templates():  # type: ignore[no-untyped-def]
    from engine.mail.catalog import FileTemplateCatalog

    return FileTemplateCatalog(settings().templates_dir)


def sync_templates_folder(factory: Callable[[], object], force: bool = False) -> bool:
    """Store the templates folder as versions (before sequences, which are checked against
    what is stored); print what happened. False when something was refused."""
    from engine.services.template_sync import sync_templates

    root = settings().templates_dir
    report = sync_templates(factory(), root, now(), force=force)  # type: ignore[arg-type]
    for problem in report.problems:
        click.echo(str(problem), err=True)
    click.echo(
        f"templates ({root}): {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.conflicts)} edited in the editor"
    )
    return not report.problems


def stored_templates(factory: Callable[[], object]):  # type: ignore[no-untyped-def]
    """The stored template versions as a catalog: sequences are synced against them."""
    from engine.services.template_versions import stored_catalog

    return stored_catalog(factory())  # type: ignore[arg-type]
