"""What every page view needs from the request: the runtime's units of work and clock,
and who is acting (for services that write an audit entry)."""

from __future__ import annotations

from datetime import datetime

from flask_login import current_user

from engine.store import UnitOfWork
from webapp.extensions import get_runtime

__all__ = ["actor", "now", "uow"]


def uow() -> UnitOfWork:
    """A fresh unit of work on the app's database."""
    return get_runtime().uow()


def now() -> datetime:
    """The app's clock (a ManualClock in tests and in ``nurture demo``)."""
    return get_runtime().clock.now()


def actor() -> str:
    """The signed-in user's email: what audit entries and versions record as the author."""
    return str(current_user.email)
