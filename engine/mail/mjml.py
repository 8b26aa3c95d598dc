"""The one door to the MJML compiler (the Rust ``mrml`` engine behind ``mjml-python``).

Keeping the third-party import here means one place to change if the compiler changes, and
one place that turns its errors into :class:`MjmlError`.
"""

from __future__ import annotations

from typing import Protocol

import mjml


class IncludeLoader(Protocol):
    """Returns the source of an ``<mj-include path="...">`` file."""

    def __call__(self, path: str) -> str: ...


class MjmlError(Exception):
    """The MJML source could not be compiled to HTML."""


def compile_mjml(source: str, include_loader: IncludeLoader) -> str:
    """Compile MJML ``source`` to HTML; ``include_loader(path)`` returns an included file.

    Jinja markup passes through untouched, so a template is compiled once per version and
    rendered per recipient afterwards.
    """
    try:
        return mjml.mjml2html(source, include_loader=include_loader)
    except ValueError as exc:  # mrml reports every parse and include failure this way
        raise MjmlError(str(exc)) from exc
