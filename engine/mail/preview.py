"""Previews that record nothing: a sent email's HTML with its tracking made inert.

Looking at an email in the app must never count as an open or a click: the open pixel and
the hidden honeypot link are removed, and tracked links point back at their destination
(when ``resolve`` can say what it was) or nowhere. Previews are also served under a CSP
that loads no remote images unless the marketer asks, so even a pixel this missed could
not fire.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["inert_tracking"]


def inert_tracking(
    html: str, base_url: str, resolve: Callable[[str], str | None] | None = None
) -> str:
    """``html`` without the open pixel and honeypot, and with every link to our tracking
    endpoints replaced: a click link by ``resolve(token)`` (its destination) or ``#``,
    an unsubscribe link by ``#``."""
    base = re.escape(base_url.rstrip("/"))
    html = re.sub(rf'<img\s[^>]*\bsrc="{base}/t/o/[^"]*"[^>]*>', "", html, flags=re.I)
    html = re.sub(rf'<a\s[^>]*\bhref="{base}/t/h/[^"]*"[^>]*>\s*</a>', "", html, flags=re.I)

    def click(match: re.Match[str]) -> str:
        target = resolve(match.group(1)) if resolve is not None else None
        safe = target if target and target.startswith(("http://", "https://")) else "#"
        return 'href="' + safe.replace("&", "&amp;").replace('"', "&quot;") + '"'

    html = re.sub(rf'href="{base}/t/c/([^"/]+)"', click, html, flags=re.I)
    return re.sub(rf'(href|src)="{base}/(?:t|u)/[^"]*"', r'\1="#"', html, flags=re.I)
