"""``nurture users create|list`` and ``nurture tokens create|list|revoke``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from webapp.cli import common

T = TypeVar("T")


def _interactive() -> bool:
    """Whether a person is at the keyboard (so a hidden password prompt makes sense)."""
    return sys.stdin.isatty()


def _call(service: Callable[..., T], *args: Any) -> T:
    """Run a service with a fresh unit of work; its refusals become one-line CLI errors."""
    from engine.exceptions import NurtureError

    try:
        return service(common.uow_factory()(), *args)
    except NurtureError as exc:
        raise click.ClickException(str(exc)) from None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


@click.group("users")
def users_group() -> None:
    """Create and list the people who use Nurture."""


@users_group.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option(
    "--role",
    type=click.Choice(["admin", "marketer", "sales"]),
    required=True,
    help="Everyone with a password signs in to the web app; "
    "a sales user without one only receives alert emails.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
@click.option(
    "--manager",
    is_flag=True,
    help="A sales manager: sees and decides the whole team's handoffs (sales users only).",
)
def users_create_command(
    email: str, name: str, role: str, password_stdin: bool, manager: bool
) -> None:
    """Create a user. Prompts for the password unless --password-stdin is given."""
    from engine.services.accounts import create_user
    from engine.services.audit import CLI_ACTOR

    if manager and role != "sales":
        raise click.ClickException(f"--manager is for sales users, not a {role}")
    password = _read_password(role, password_stdin)
    user_id = _call(create_user, email, name, role, password, common.now(), CLI_ACTOR, manager)
    shown = "sales manager" if manager else role
    click.echo(f"created user {user_id}: {email.strip().lower()} ({shown})")


def _read_password(role: str, from_stdin: bool) -> str | None:
    """The password as given, or None for a sales user who gets none.

    Never an option with the value: that would land in shell history and ``ps`` output.
    """
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line and role != "sales":
            raise click.ClickException("no password on standard input")
        return line or None
    if not _interactive():
        if role == "sales":
            return None
        raise click.ClickException(
            f"a {role} needs a password and there is no terminal to ask for it: "
            "pipe it in with --password-stdin"
        )
    if role == "sales":
        typed: str = click.prompt(
            "Password (leave empty for none: this user only receives alerts)",
            default="",
            show_default=False,
            hide_input=True,
            confirmation_prompt=True,
        )
        return typed or None
    typed = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return typed


@users_group.command("setup-link")
@click.option(
    "--base-url", default=None, help="Where the web app answers (default: NURTURE_BASE_URL)."
)
def users_setup_link_command(base_url: str | None) -> None:
    """Print the one-time link that creates the first admin in the browser.

    Only useful on a fresh installation: once any user exists the link is refused (create
    more users in the web app, or with `nurture users create`).
    """
    from engine.services.signin import needs_setup
    from webapp.auth import setup_link

    settings = common.settings()
    if not needs_setup(common.uow_factory()()):  # type: ignore[arg-type]
        raise click.ClickException(
            "users exist already: sign in, or create one with `nurture users create`"
        )
    click.echo(setup_link(base_url or settings.base_url, settings.secret_key))


@users_group.command("list")
def users_list_command() -> None:
    """Show every user with role and whether they can sign in."""
    from engine.services.accounts import list_users

    users = _call(list_users)
    if not users:
        click.echo("no users yet: create one with `nurture users create EMAIL --role admin`")
    for user in users:
        flags = [] if user.active else ["inactive"]
        if not user.has_password:
            flags.append("no password")
        if user.sales_manager:
            flags.append("sales manager")
        extra = f"  ({', '.join(flags)})" if flags else ""
        click.echo(f"{user.id:>5}  {user.email:<40} {user.role:<9} {user.name}{extra}")


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens (for CRMs, forms and other systems)."""


@tokens_group.command("create")
@click.argument("name")
def tokens_create_command(name: str) -> None:
    """Create a token named NAME (the API records it as the actor) and print it once.

    The token goes alone to standard output, so `TOKEN=$(nurture tokens create crm)` works;
    the reminder goes to standard error.
    """
    from engine.services.accounts import create_token

    token_id, plaintext = _call(create_token, name, common.now())
    click.echo(plaintext)
    click.echo(
        f"token {token_id} ({name.strip()}) created. Store it now: it cannot be shown again "
        "(only its hash is kept). Send it as 'Authorization: Bearer <token>'.",
        err=True,
    )


@tokens_group.command("list")
def tokens_list_command() -> None:
    """Show every token (never the secret: it is not stored)."""
    from engine.services.accounts import list_tokens

    tokens = _call(list_tokens)
    if not tokens:
        click.echo("no tokens yet: create one with `nurture tokens create NAME`")
        return
    click.echo(f"{'ID':>5}  {'NAME':<32} {'CREATED':<16}  {'LAST USED':<16}  STATUS")
    for token in tokens:
        status = "active" if token.active else f"revoked {_when(token.revoked_at)}"
        click.echo(
            f"{token.id:>5}  {token.name:<32} {_when(token.created_at):<16}  "
            f"{_when(token.last_used_at):<16}  {status}"
        )


@tokens_group.command("revoke")
@click.argument("token_id", metavar="ID", type=common.ROW_ID)
def tokens_revoke_command(token_id: int) -> None:
    """Refuse the token with this ID from now on (see `nurture tokens list`)."""
    from engine.services.accounts import revoke_token

    now = common.now()
    token = _call(revoke_token, token_id, now)
    if token.revoked_at is not None and token.revoked_at < now:
        click.echo(
            f"token {token.id} ({token.name}) was already revoked on {_when(token.revoked_at)}"
        )
    else:
        click.echo(f"revoked token {token.id} ({token.name})")
