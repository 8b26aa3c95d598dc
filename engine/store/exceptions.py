"""Errors the store raises itself (database errors stay SQLAlchemy's own)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's own errors."""


class ImmutableRowError(StoreError):
    """An update to a row that is written once and never changed (a sequence version)."""


class UnitOfWorkError(StoreError):
    """The unit of work was used outside (or nested inside) its ``with`` block."""


class MigrationError(StoreError):
    """A migration ran but left the database inconsistent (e.g. dangling foreign keys)."""
