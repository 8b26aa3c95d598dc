"""Signing in to the web app: check a password, reload the signed-in user on each request.

A session carries the user's id and a *stamp* derived from their password hash, so
changing a password (or deactivating the user) ends every session opened before: the next
request's ``session_user`` no longer matches and the browser is signed out.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from engine.store import UnitOfWork, User, UserRole, normalize_email

__all__ = ["SessionUser", "authenticate_user", "needs_setup", "session_user"]

# Checked against when the email is unknown, so "no such user" takes as long as "wrong
# password" and response times do not reveal which addresses have accounts.
_DUMMY_HASH = generate_password_hash("nurture-timing-equaliser")


@dataclass(frozen=True)
class SessionUser:
    """The signed-in user as the web app sees it (plain data, no ORM row)."""

    id: int
    email: str
    name: str
    role: UserRole
    stamp: str
    sales_manager: bool = False  # sees the whole team's handoffs
    digest: bool = True  # gets the daily digest email

    @property
    def display_name(self) -> str:
        return self.name or self.email


def _stamp(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _session_user(user: User) -> SessionUser:
    return SessionUser(
        user.id,
        user.email,
        user.name,
        user.role,
        _stamp(user.password_hash),
        user.sales_manager,
        user.digest,
    )


def authenticate_user(uow: UnitOfWork, email: str, password: str) -> SessionUser | None:
    """The active user with this email and password, or None (the same None for every
    reason: unknown email, wrong password, no password set, deactivated)."""
    address = normalize_email(email or "")
    with uow:
        user = uow.session.scalars(select(User).where(User.email == address)).first()
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    matches = check_password_hash(stored, password or "")
    if user is None or not user.password_hash or not user.active or not matches:
        return None
    return _session_user(user)


def session_user(uow: UnitOfWork, user_id: int, stamp: str) -> SessionUser | None:
    """Reload a session's user; None when they are gone, deactivated, or their password
    changed since the session began (the stamp no longer matches)."""
    with uow:
        user = uow.session.get(User, user_id)
    if user is None or not user.active or not user.password_hash:
        return None
    found = _session_user(user)
    return found if hmac.compare_digest(found.stamp, stamp) else None


def needs_setup(uow: UnitOfWork) -> bool:
    """True on a fresh installation: the user table is empty, so the first admin is
    created in the browser through the setup link ``nurture up`` prints."""
    with uow:
        return uow.session.scalar(select(User.id).limit(1)) is None
