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


# mrml hides the <mj-preview> text with "font-size:1px;color:#ffffff". SpamAssassin reads
# that as hidden text: HTML_FONT_LOW_CONTRAST (20_html_tests.cf; HTML.pm compares a
# text's colour with its background *before* it looks at display:none) scored every email
# 0.7, and dropping only the colour trips __FONT_INVIS (72_active.cf: a tag with a 0/1px
# font size, unit required, within 80 characters of its text) instead. The text is hidden
# by display:none, zero opacity and size, and mso-hide for Outlook: it needs neither.
_PREVIEW_STYLE = 'style="display:none;font-size:1px;color:#ffffff;line-height:1px;'
_PREVIEW_STYLE_FIXED = 'style="display:none;font-size:0;line-height:0;mso-hide:all;'


def compile_mjml(source: str, include_loader: IncludeLoader) -> str:
    """Compile MJML ``source`` to HTML; ``include_loader(path)`` returns an included file.

    Jinja markup passes through untouched, so a template is compiled once per version and
    rendered per recipient afterwards. The hidden preview text loses its white colour
    (see ``_PREVIEW_STYLE``).
    """
    try:
        html: str = mjml.mjml2html(source, include_loader=include_loader)
    except ValueError as exc:  # mrml reports every parse and include failure this way
        raise MjmlError(str(exc)) from exc
    return html.replace(_PREVIEW_STYLE, _PREVIEW_STYLE_FIXED, 1)
