"""The engine's exceptions: one line each, caught by the shells and shown to people."""

from __future__ import annotations

from collections.abc import Sequence

Problem = tuple[str | None, str]
"""One thing wrong with an input: the dotted field (None for the input as a whole) and why."""


class NurtureError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInputError(NurtureError):
    """Input from a person or a system that the engine refuses, with the reason.

    ``problems`` names each bad field, so the API can answer ``{"field", "message"}`` pairs
    and an import can print them; ``field=`` is the shorthand for a single one.
    """

    def __init__(
        self, message: str, *, field: str | None = None, problems: Sequence[Problem] = ()
    ) -> None:
        super().__init__(message)
        self.problems: list[Problem] = list(problems) or [(field, message)]


class NotFoundError(NurtureError):
    """A referenced prospect, sequence or handoff does not exist."""


class ConflictError(NurtureError):
    """The request collides with the current state (e.g. a handoff already decided)."""
