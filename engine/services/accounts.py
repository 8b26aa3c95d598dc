"""Accounts: the people who use Nurture (users) and the machines that call its API (tokens).

API tokens are bearer secrets, so the database only ever holds their SHA-256: a copy of
the table (a backup, a read replica, a SQL injection elsewhere) does not hand out working
tokens. SHA-256 rather than a slow password hash is enough because the plaintext is 256
random bits, not something a person chose; and looking a token up *by its hash* means the
comparison the database makes is against a value the caller cannot steer byte by byte, so
timing tells an attacker nothing about a valid token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.audit import CLI_ACTOR, record_audit
from engine.services.schemas import EMAIL
from engine.store import ApiToken, UnitOfWork, User, UserRole, normalize_email

__all__ = [
    "LAST_USED_RESOLUTION",
    "MIN_PASSWORD_LENGTH",
    "TOKEN_PREFIX",
    "TokenInfo",
    "UserInfo",
    "authenticate_token",
    "create_first_admin",
    "create_token",
    "create_user",
    "hash_token",
    "list_tokens",
    "list_users",
    "revoke_token",
    "set_password",
    "set_user_active",
]

TOKEN_PREFIX = "nurt_"
"""Marks a Nurture token, so secret scanners (and people) recognise one in a log or a repo."""

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token: an integration posting
hundreds of events a second must not turn every request into a write of the same row."""

MIN_PASSWORD_LENGTH = 8
NAME_LENGTH = 200  # ApiToken.name and User.name


@dataclass(frozen=True)
class UserInfo:
    """A user as listings show it (never the password hash)."""

    id: int
    email: str
    name: str
    role: UserRole
    active: bool
    has_password: bool
    created_at: datetime
    sales_manager: bool = False
    digest: bool = True


@dataclass(frozen=True)
class TokenInfo:
    """An API token without its secret: what a listing shows and what auth hands the API."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(plaintext: str) -> str:
    """The stored form of a token: SHA-256, hex (64 characters)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _NewUser:
    """A user's fields, checked and normalised, with the password already hashed."""

    email: str
    name: str
    role: UserRole
    password_hash: str | None
    sales_manager: bool = False


def _checked(
    email: str, name: str, role: str, password: str | None, sales_manager: bool = False
) -> _NewUser:
    address = normalize_email(email)
    if not EMAIL.match(address) or len(address) > 320:
        raise InvalidInputError(f"{email!r} is not an email address")
    try:
        user_role = UserRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in UserRole)
        raise InvalidInputError(f"unknown role {role!r}; use one of: {allowed}") from None
    name = name.strip()
    if len(name) > NAME_LENGTH:
        raise InvalidInputError(f"name is {len(name)} characters long; at most {NAME_LENGTH}")
    password = password or None
    if password is None and user_role != UserRole.SALES:
        raise InvalidInputError(f"a {user_role} signs in to the web app and needs a password")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password is too short: use {MIN_PASSWORD_LENGTH}+ characters")
    if sales_manager and user_role != UserRole.SALES:
        raise InvalidInputError(f"a {user_role} cannot be a sales manager: only sales users")
    password_hash = generate_password_hash(password) if password is not None else None
    return _NewUser(address, name, user_role, password_hash, sales_manager)


def create_user(
    uow: UnitOfWork,
    email: str,
    name: str,
    role: str,
    password: str | None,
    now: datetime,
    actor: str = CLI_ACTOR,
    sales_manager: bool = False,
) -> int:
    """Create a user and return its id (and an audit entry naming ``actor``).

    ``sales_manager`` (sales users only) lets them see and decide the whole team's
    handoffs in the inbox, not only their own.

    Admins and marketers sign in to the web app, so they need a password; sales users may
    have none, because they can work from alert emails alone. The password is stored as a
    salted, slow hash (Werkzeug's default, scrypt). Raises InvalidInputError for a bad
    email, role, name or password and ConflictError when the email is taken.
    """
    new = _checked(email, name, role, password, sales_manager)
    with uow:
        user_id = _insert(uow, new, now, actor)
        uow.commit()
        return user_id


def create_first_admin(uow: UnitOfWork, email: str, name: str, password: str, now: datetime) -> int:
    """Create the first admin of an empty installation (the browser setup link's form).

    Refused with ConflictError as soon as any user exists, checked in the same transaction
    as the insert (on PostgreSQL under a table lock), so two setup forms submitted at once
    cannot both create an admin.
    """
    new = _checked(email, name, UserRole.ADMIN, password)
    with uow:
        if uow.is_postgres:
            uow.session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
        if uow.session.scalar(select(User.id).limit(1)) is not None:
            raise ConflictError("Nurture is already set up: sign in with an existing account")
        user_id = _insert(uow, new, now, actor=new.email)
        uow.commit()
        return user_id


def _insert(uow: UnitOfWork, new: _NewUser, now: datetime, actor: str) -> int:
    """Insert the user and its audit entry (flushed, not committed)."""
    session = uow.session
    if session.scalar(select(User.id).where(User.email == new.email)) is not None:
        raise ConflictError(f"a user with email {new.email!r} already exists")
    user = User(
        email=new.email,
        name=new.name,
        role=new.role,
        password_hash=new.password_hash,
        active=True,
        created_at=now,
        sales_manager=new.sales_manager,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # created concurrently between the check and the insert
        raise ConflictError(f"a user with email {new.email!r} already exists") from None
    record_audit(
        session,
        actor=actor,
        action="user.created",
        subject=f"user:{user.id}",
        summary=f"created {'sales manager' if new.sales_manager else new.role} {new.email}",
        details={"email": new.email, "role": str(new.role), "sales_manager": new.sales_manager},
        now=now,
    )
    return user.id


def set_user_active(
    uow: UnitOfWork, user_id: int, active: bool, now: datetime, actor: str = CLI_ACTOR
) -> UserInfo:
    """Let a user sign in again, or stop them (their sessions end at their next request).

    Users are deactivated, never deleted: handoff decisions and audit entries name them.
    """
    with uow:
        user = uow.session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"no user with id {user_id}")
        if user.active != active:
            user.active = active
            record_audit(
                uow.session,
                actor=actor,
                action="user.activated" if active else "user.deactivated",
                subject=f"user:{user.id}",
                summary=f"{'reactivated' if active else 'deactivated'} {user.email}",
                now=now,
            )
            uow.commit()
        return _user_info(user)


def set_password(
    uow: UnitOfWork, user_id: int, password: str, now: datetime, actor: str = CLI_ACTOR
) -> UserInfo:
    """Give a user a new password (an admin resetting a forgotten one). Every session the
    user had open ends at its next request: sessions carry a stamp of the old hash."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password is too short: use {MIN_PASSWORD_LENGTH}+ characters")
    with uow:
        user = uow.session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"no user with id {user_id}")
        user.password_hash = generate_password_hash(password)
        record_audit(
            uow.session,
            actor=actor,
            action="user.password_set",
            subject=f"user:{user.id}",
            summary=f"set a new password for {user.email}",
            now=now,
        )
        uow.commit()
        return _user_info(user)


def list_users(uow: UnitOfWork) -> list[UserInfo]:
    """Every user, by email."""
    with uow:
        return [_user_info(u) for u in uow.session.scalars(select(User).order_by(User.email))]


def _user_info(user: User) -> UserInfo:
    return UserInfo(
        user.id,
        user.email,
        user.name,
        user.role,
        user.active,
        bool(user.password_hash),
        user.created_at,
        user.sales_manager,
        user.digest,
    )


def create_token(
    uow: UnitOfWork, name: str, now: datetime, actor: str = CLI_ACTOR
) -> tuple[int, str]:
    """Create an API token named ``name``; return ``(id, plaintext)``.

    The plaintext exists only in this return value: it is not stored and cannot be
    recovered, only revoked and replaced. The name is what the API records as the actor
    (e.g. who accepted a handoff), so two *active* tokens may not share one; rotate by
    creating ``crm-2`` and revoking ``crm``.
    """
    name = name.strip()
    if not name:
        raise InvalidInputError("a token needs a name, e.g. the system that will use it")
    if len(name) > NAME_LENGTH:
        raise InvalidInputError(f"name is {len(name)} characters long; at most {NAME_LENGTH}")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with uow:
        session = uow.session
        taken = session.scalar(
            select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        )
        if taken is not None:
            raise ConflictError(
                f"an active token is already named {name!r} (id {taken}); "
                "pick another name or revoke that one first"
            )
        token = ApiToken(name=name, token_hash=hash_token(plaintext), created_at=now)
        session.add(token)
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="token.created",
            subject=f"token:{token.id}",
            summary=f"created API token {name!r}",
            now=now,
        )
        uow.commit()
        return token.id, plaintext


_TOKEN_BY_HASH = select(
    ApiToken.id,
    ApiToken.name,
    ApiToken.token_hash,
    ApiToken.created_at,
    ApiToken.last_used_at,
    ApiToken.revoked_at,
).where(ApiToken.token_hash == bindparam("digest"))
"""Built once: every API request runs it, and building it (and loading an ORM entity
from its row) cost more CPU than the database spent answering it."""


def authenticate_token(uow: UnitOfWork, plaintext: str, now: datetime) -> TokenInfo | None:
    """The active token whose plaintext this is, or None (unknown or revoked).

    Records the use in ``last_used_at``, at most once per ``LAST_USED_RESOLUTION``: the
    check happens on the value just read, so a busy token costs a read per request and a
    write per minute. The write is conditional, so concurrent first requests agree on one
    value instead of racing.
    """
    if not plaintext:
        return None
    digest = hash_token(plaintext)
    with uow:
        # Core statements on the session's connection: no ORM entity is involved, and the
        # ORM's execution path cost as much CPU again as the statement's own.
        connection = uow.session.connection()
        token = connection.execute(_TOKEN_BY_HASH, {"digest": digest}).first()
        # The index lookup already matched the digest; compare_digest states the intent and
        # guards any future lookup that is not an exact match (e.g. by a prefix).
        if token is None or not hmac.compare_digest(token.token_hash, digest):
            return None
        if token.revoked_at is not None:
            return None
        last_used = token.last_used_at
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            stale = now - LAST_USED_RESOLUTION
            connection.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token.id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= stale),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
            last_used = now
        # A COMMIT even when only read (free: nothing to write), never the ROLLBACK that
        # leaving the block sends: psycopg forgets a connection's prepared statements at
        # every rollback, so the request's own statements never reached the five uses
        # that get them prepared, and PostgreSQL parsed and planned each one every time.
        uow.commit()
        return TokenInfo(token.id, token.name, token.created_at, last_used, None)


def revoke_token(
    uow: UnitOfWork, token_id: int, now: datetime, actor: str = CLI_ACTOR
) -> TokenInfo:
    """Refuse the token from now on. Revoking twice keeps the first revocation time."""
    with uow:
        token = uow.session.get(ApiToken, token_id)
        if token is None:
            raise NotFoundError(f"no API token with id {token_id}")
        if token.revoked_at is None:
            token.revoked_at = now
            record_audit(
                uow.session,
                actor=actor,
                action="token.revoked",
                subject=f"token:{token.id}",
                summary=f"revoked API token {token.name!r}",
                now=now,
            )
            uow.commit()
        return _token_info(token)


def list_tokens(uow: UnitOfWork) -> list[TokenInfo]:
    """Every token, active or revoked, oldest first (no secrets: none are stored)."""
    with uow:
        return [_token_info(t) for t in uow.session.scalars(select(ApiToken).order_by(ApiToken.id))]


def _token_info(token: ApiToken) -> TokenInfo:
    return TokenInfo(token.id, token.name, token.created_at, token.last_used_at, token.revoked_at)
