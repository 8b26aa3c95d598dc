"""Text taken from a hostile message, made storable and readable."""

from __future__ import annotations

import re

__all__ = ["clean"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: str | None, limit: int = 4000) -> str | None:
    """``value`` as the database can store it and a person can read it, or None if nothing
    is left: no NUL or other control character (line breaks and tabs stay), no lone
    surrogate (the stdlib parser keeps undecodable header bytes as surrogates, which
    PostgreSQL refuses), at most ``limit`` characters."""
    if value is None:
        return None
    text = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text).strip()[:limit] or None
