"""Headers of the pages reached through a signed link in an email (unsubscribe, decisions).

The link's token is the whole authority, so the page must not leak it (no Referer, not kept
by any cache), must not be framed (clickjacking a one-button form: ``X-Frame-Options`` here,
``frame-ancestors 'none'`` in every Content-Security-Policy of the app) and must not be
indexed. The unsubscribe pages and the sales decision page answer with exactly these.
"""

from __future__ import annotations

from flask import Response

__all__ = ["NO_STORE", "SIGNED_LINK_PAGE_HEADERS", "signed_link_page"]

NO_STORE = "no-store, private"

SIGNED_LINK_PAGE_HEADERS: dict[str, str] = {
    "Cache-Control": NO_STORE,
    "Referrer-Policy": "no-referrer",  # the page's URL holds the token
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
}


def signed_link_page(body: str, status: int, *, policy: str | None = None) -> Response:
    """An HTML answer with the signed-link page headers; ``policy`` is a page's own
    Content-Security-Policy (else the app's applies)."""
    headers = dict(SIGNED_LINK_PAGE_HEADERS)
    if policy is not None:
        headers["Content-Security-Policy"] = policy
    return Response(body, status=status, headers=headers, mimetype="text/html")
