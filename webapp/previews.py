"""Email previews in the browser: always their own response, under their own CSP, shown in
``<iframe sandbox>`` by the page that links them.

An email's HTML needs inline styles (MJML writes them) but never gets to run a script, and
loads no remote image unless the marketer asks: the sender's image server (or our own
tracking pixel) learns nothing from a preview.
"""

from __future__ import annotations

from flask import Response

__all__ = ["PREVIEW_POLICY", "preview_response"]

PREVIEW_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:{images}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def preview_response(html: str, *, images: bool = False) -> Response:
    """``html`` as a framable page (same origin only) with the preview policy."""
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY.format(
        images=" https:" if images else ""
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
