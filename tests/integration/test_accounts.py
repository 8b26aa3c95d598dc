"""Users and API tokens: the accounts service on both databases, and its CLI commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select
from werkzeug.security import check_password_hash

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.accounts import (
    TOKEN_PREFIX,
    authenticate_token,
    create_token,
    create_user,
    hash_token,
    list_tokens,
    list_users,
    revoke_token,
)
from engine.store import ApiToken, User, UserRole
from webapp.cli import accounts as cli_accounts
from webapp.cli import common, main

# --- users -----------------------------------------------------------------------------


def test_create_user_stores_a_slow_salted_hash_never_the_password(uow_factory, now):
    user_id = create_user(uow_factory(), " Rep@Example.com ", "Rita Rep", "admin", "hunter2!x", now)

    with uow_factory() as uow:
        user = uow.session.get(User, user_id)
        assert user is not None
        assert (user.email, user.name, user.role) == ("rep@example.com", "Rita Rep", UserRole.ADMIN)
        assert user.password_hash and "hunter2!x" not in user.password_hash
        assert user.password_hash.startswith("scrypt:")
        assert check_password_hash(user.password_hash, "hunter2!x")


def test_sales_users_may_have_no_password_but_others_need_one(uow_factory, now):
    user_id = create_user(uow_factory(), "sam@example.com", "Sam", "sales", None, now)
    [info] = list_users(uow_factory())
    assert (info.id, info.role, info.has_password) == (user_id, UserRole.SALES, False)

    with pytest.raises(
        InvalidInputError, match="a marketer signs in to the web app and needs a password"
    ):
        create_user(uow_factory(), "mia@example.com", "Mia", "marketer", "", now)
    with pytest.raises(InvalidInputError, match="too short"):
        create_user(uow_factory(), "mia@example.com", "Mia", "marketer", "short", now)


def test_user_role_and_email_are_checked(uow_factory, now):
    with pytest.raises(InvalidInputError, match="unknown role 'boss'; use one of: admin"):
        create_user(uow_factory(), "a@example.com", "", "boss", "long enough", now)
    with pytest.raises(InvalidInputError, match="not an email"):
        create_user(uow_factory(), "not-an-email", "", "sales", None, now)


def test_duplicate_email_is_a_conflict_whatever_its_case(uow_factory, now):
    create_user(uow_factory(), "ann@example.com", "Ann", "sales", None, now)
    with pytest.raises(ConflictError, match="already exists"):
        create_user(uow_factory(), "ANN@example.com", "Ann again", "sales", None, now)
    assert len(list_users(uow_factory())) == 1


# --- tokens ----------------------------------------------------------------------------


def test_a_token_is_shown_once_and_stored_only_as_its_sha256(uow_factory, now):
    token_id, plaintext = create_token(uow_factory(), "hubspot", now)

    assert plaintext.startswith(TOKEN_PREFIX) and len(plaintext) > 40
    with uow_factory() as uow:
        row = uow.session.get(ApiToken, token_id)
        assert row is not None
        assert row.token_hash == hash_token(plaintext) and len(row.token_hash) == 64
        stored = [str(v) for v in vars(row).values()]
        assert not any(plaintext in value for value in stored)


def test_authenticate_accepts_the_token_and_refuses_others(uow_factory, now):
    token_id, plaintext = create_token(uow_factory(), "hubspot", now)

    info = authenticate_token(uow_factory(), plaintext, now)
    assert info is not None and (info.id, info.name, info.active) == (token_id, "hubspot", True)
    assert authenticate_token(uow_factory(), plaintext + "x", now) is None
    assert authenticate_token(uow_factory(), "", now) is None
    assert authenticate_token(uow_factory(), hash_token(plaintext), now) is None  # not the hash


def test_last_used_is_written_at_most_once_a_minute(uow_factory, now):
    token_id, plaintext = create_token(uow_factory(), "hubspot", now)

    def last_used():  # type: ignore[no-untyped-def]
        with uow_factory() as uow:
            return uow.session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))

    assert last_used() is None
    authenticate_token(uow_factory(), plaintext, now)
    assert last_used() == now
    authenticate_token(uow_factory(), plaintext, now + timedelta(seconds=59))
    assert last_used() == now
    later = now + timedelta(seconds=61)
    info = authenticate_token(uow_factory(), plaintext, later)
    assert last_used() == later and info is not None and info.last_used_at == later


def test_a_token_check_ends_in_a_commit_never_a_rollback(uow_factory, db_engine, now):
    """psycopg forgets every prepared statement of a connection at a ROLLBACK: a check
    ending in one (leaving its block after a read) kept an API request's own statements
    from ever being prepared. A read-only COMMIT costs the same round trip."""
    _, plaintext = create_token(uow_factory(), "hubspot", now)
    ended: list[str] = []
    event.listen(db_engine, "commit", lambda _conn: ended.append("commit"))
    event.listen(db_engine, "rollback", lambda _conn: ended.append("rollback"))

    authenticate_token(uow_factory(), plaintext, now)  # first use: writes last_used_at
    authenticate_token(uow_factory(), plaintext, now + timedelta(seconds=1))  # reads only

    assert ended == ["commit", "commit"]


def test_a_revoked_token_is_refused_and_revoking_twice_keeps_the_first_time(uow_factory, now):
    token_id, plaintext = create_token(uow_factory(), "hubspot", now)

    revoked = revoke_token(uow_factory(), token_id, now)
    again = revoke_token(uow_factory(), token_id, now + timedelta(hours=1))

    assert revoked.revoked_at == now and again.revoked_at == now and not again.active
    assert authenticate_token(uow_factory(), plaintext, now + timedelta(hours=2)) is None
    with pytest.raises(NotFoundError):
        revoke_token(uow_factory(), token_id + 100, now)


def test_token_names_are_unique_among_active_tokens(uow_factory, now):
    first, _ = create_token(uow_factory(), "crm", now)
    with pytest.raises(ConflictError, match="already named 'crm'"):
        create_token(uow_factory(), "crm", now)
    revoke_token(uow_factory(), first, now)
    second, _ = create_token(uow_factory(), "crm", now)  # rotation under the same name

    assert [(t.id, t.active) for t in list_tokens(uow_factory())] == [
        (first, False),
        (second, True),
    ]
    with pytest.raises(InvalidInputError, match="needs a name"):
        create_token(uow_factory(), "  ", now)


# --- CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Invoke ``nurture`` in-process on a private SQLite database."""
    monkeypatch.setenv("NURTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    common.settings.cache_clear()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    yield invoke
    common.settings.cache_clear()


def test_cli_users_create_reads_the_password_from_stdin_and_lists_users(cli):
    args = ["users", "create", "Ada@Example.com", "--name", "Ada", "--role", "admin"]
    made = cli(*args, "--password-stdin", input="correct horse\n")
    assert made.exit_code == 0, made.output
    assert "created user 1: ada@example.com (admin)" in made.output

    sales = cli("users", "create", "sam@example.com", "--role", "sales")  # no tty: no password
    assert sales.exit_code == 0, sales.output

    listed = cli("users", "list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert "ada@example.com" in lines[0] and "no password" not in lines[0]
    assert "sam@example.com" in lines[1] and "(no password)" in lines[1]


def test_cli_users_create_a_sales_manager(cli):
    made = cli("users", "create", "lead@example.com", "--role", "sales", "--manager")
    assert made.exit_code == 0, made.output
    assert "created user 1: lead@example.com (sales manager)" in made.output
    assert "sales manager" in cli("users", "list").output
    refused = cli("users", "create", "mia@example.com", "--role", "marketer", "--manager")
    assert refused.exit_code == 1 and "--manager is for sales users" in refused.output


def test_cli_users_create_without_a_terminal_refuses_to_invent_a_password(cli):
    result = cli("users", "create", "mia@example.com", "--role", "marketer")
    assert result.exit_code == 1
    assert "--password-stdin" in result.output


def test_cli_users_create_prompts_twice_when_interactive(cli, monkeypatch):
    monkeypatch.setattr(cli_accounts, "_interactive", lambda: True)
    typed = "s3cret-pass\nother-pass\ns3cret-pass\ns3cret-pass\n"
    result = cli("users", "create", "mia@example.com", "--role", "marketer", input=typed)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output  # click re-asked after the mismatch
    assert "created user 1" in result.output


def test_cli_users_create_reports_a_duplicate_as_one_line(cli):
    cli("users", "create", "sam@example.com", "--role", "sales")
    result = cli("users", "create", "sam@example.com", "--role", "sales")
    assert result.exit_code == 1
    assert "Error: a user with email 'sam@example.com' already exists" in result.output


def test_cli_tokens_create_prints_the_token_once_then_list_and_revoke(cli):
    created = CliRunner().invoke(main, ["tokens", "create", "hubspot"], catch_exceptions=False)
    assert created.exit_code == 0
    token = created.stdout.strip()
    assert token.startswith(TOKEN_PREFIX) and "\n" not in token  # stdout: the token alone
    assert "cannot be shown again" in created.stderr

    listed = cli("tokens", "list")
    assert "hubspot" in listed.output and "active" in listed.output
    assert token not in listed.output

    revoked = cli("tokens", "revoke", "1")
    assert revoked.exit_code == 0 and "revoked token 1 (hubspot)" in revoked.output
    assert "revoked" in cli("tokens", "list").output.splitlines()[1]
    assert "already revoked" in cli("tokens", "revoke", "1").output

    missing = cli("tokens", "revoke", "42")
    assert missing.exit_code == 1 and "no API token with id 42" in missing.output


@pytest.mark.parametrize("raw", ["9223372036854775808", "0", "-3", "1e3"])
def test_cli_tokens_revoke_refuses_an_id_out_of_range_as_a_usage_error(cli, raw):
    result = CliRunner().invoke(main, ["tokens", "revoke", "--", raw])
    assert result.exit_code == 2, result.output
    assert "whole number from 1 to 9223372036854775807" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
