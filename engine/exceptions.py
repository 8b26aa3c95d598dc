"""The engine's exceptions: one line each, caught by the shells and shown to people."""


class NurtureError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInputError(NurtureError):
    """Input from a person or a system that the engine refuses, with the reason."""


class NotFoundError(NurtureError):
    """A referenced prospect, sequence or handoff does not exist."""


class ConflictError(NurtureError):
    """The request collides with the current state (e.g. a handoff already decided)."""
