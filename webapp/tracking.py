"""Public tracking endpoints: open pixel, click redirect, honeypot, unsubscribe.

No login: these URLs are in the emails. Each route parses the request, calls one service
and answers; the rules for what is recorded, and how people are told from machines, live in
``engine/services/tracking.py`` and ``engine/core/bots.py`` (see ``docs/tracking.md``).

What the answers never do:

- redirect anywhere but to a link the message really contained (no open redirect);
- tell a caller whether a token's message or prospect exists: the pixel is the same GIF
  for every token, every failed click is the same 404, and a correctly signed unsubscribe
  token gets the same page whether or not there was anything left to unsubscribe;
- unsubscribe on a GET: link scanners and mail previews fetch every URL in a message.

Every route also takes the token as a ``path`` with ``merge_slashes=False``, so appended
junk (``/t/c/<token>//evil.example``) reaches the view and gets its 404 instead of
Werkzeug's slash-normalising redirect.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.urls import iri_to_uri

from engine.exceptions import NotFoundError
from engine.mail.tokens import TokenSigner
from engine.runtime import Runtime
from engine.services.tracking import RequestInfo, unsubscribe_token_message
from engine.services.tracking_hits import HONEYPOT, OPEN, accept_click, accept_hit, request_drain
from engine.services.unsubscribe import unsubscribe
from webapp.extensions import get_runtime
from webapp.headers import NO_STORE, signed_link_page

__all__ = ["PIXEL_GIF", "bp"]

log = logging.getLogger(__name__)

bp = Blueprint("tracking", __name__)

# The smallest transparent 1x1 GIF (43 bytes): a palette of two, pixel 0 transparent.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# Tracking answers must reach us every time (a cached pixel or redirect records nothing) and
# must not be kept by shared caches (the token names one recipient's message): NO_STORE.
# The pages stand alone (inline style, nothing loaded), so their policy is the strictest.
_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_PIXEL_HEADERS = (
    ("Content-Type", "image/gif"),
    ("Cache-Control", NO_STORE),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
)
_ONE_CLICK = ("List-Unsubscribe", "One-Click")
_MAX_BODY = 16 * 1024  # a one-click POST is 26 bytes; a browser's form post not much more
_SIGNER_KEY = "nurture.tracking.signer"


def _signer() -> TokenSigner:
    """The app's token signer, built once per app (its keys derive from the secret)."""
    extensions = current_app.extensions
    signer = extensions.get(_SIGNER_KEY)
    if signer is None:
        signer = TokenSigner(get_runtime().settings.secret_key)
        extensions[_SIGNER_KEY] = signer
    return signer


def _request_info() -> RequestInfo:
    """What the classifier looks at. ``remote_addr`` is the peer: behind a reverse proxy,
    wrap the app in Werkzeug's ``ProxyFix`` so it is the client (see docs/tracking.md)."""
    agent = request.headers.get("User-Agent", "")
    return RequestInfo(user_agent=agent[:1000], ip=request.remote_addr, method=request.method)


def _judge_later(runtime: Runtime) -> None:
    """Make sure a job will turn the recorded hits into events: one per burst, queued by
    the hit that finds none pending (``engine.services.tracking_hits.request_drain``).

    On Redis that is a round trip, made by a thread of this process after the answer
    (``Runtime.drain_notifier``); the in-process queue's is a dictionary lookup, made here. The hit
    is already committed: if the queue is unreachable, the next tick's sweep judges it, so
    a failure is logged and the answer goes out as usual.
    """
    if runtime.queue.kind == "in-process":
        try:
            request_drain(runtime.queue)
        except Exception:
            log.exception("tracking: could not queue the job judging the hits")
        return
    runtime.drain_notifier.hit_recorded()


def _page(template: str, status: int) -> Response:
    settings = get_runtime().settings
    body = render_template(f"tracking/{template}", company=settings.company_name)
    return signed_link_page(body, status, policy=_PAGE_POLICY)


def _not_found() -> Response:
    return _page("not_found.html", 404)


@bp.get("/t/o/", defaults={"token": ""}, merge_slashes=False)
@bp.get("/t/o/<path:token>", merge_slashes=False)
def open_pixel(token: str) -> Response:
    """The 1x1 GIF, the same for every token; a valid one records an open on the way."""
    runtime = get_runtime()
    try:
        if accept_hit(
            runtime.hit_engine, OPEN, token, _request_info(), runtime.clock.now(), signer=_signer()
        ):
            _judge_later(runtime)
    except Exception:  # the pixel never fails, and never says why
        log.exception("open pixel: could not record an open")
    return Response(PIXEL_GIF, headers=_PIXEL_HEADERS)


@bp.get("/t/c/", defaults={"token": ""}, merge_slashes=False)
@bp.get("/t/c/<path:token>", merge_slashes=False)
def click(token: str) -> Response:
    """302 to the link the token names, from the message's stored links only; else 404."""
    runtime = get_runtime()
    try:
        url = accept_click(
            runtime.hit_engine, token, _request_info(), runtime.clock.now(), signer=_signer()
        )
    except NotFoundError:
        return _not_found()
    _judge_later(runtime)
    response = Response(status=302, headers={"Cache-Control": NO_STORE})
    response.headers["Location"] = _location(url)
    return response


def _location(url: str) -> str:
    """The URL as a header value: browsers drop tabs and newlines from URLs (WHATWG URL
    standard), and a header cannot hold non-ASCII, so those are percent-encoded."""
    cleaned = url.replace("\t", "").replace("\r", "").replace("\n", "")
    return cleaned if cleaned.isascii() else iri_to_uri(cleaned)


@bp.get("/t/h/", defaults={"token": ""}, merge_slashes=False)
@bp.get("/t/h/<path:token>", merge_slashes=False)
def honeypot(token: str) -> Response:
    """The hidden link only machines follow: recorded, then a blank page like any other."""
    runtime = get_runtime()
    try:
        if accept_hit(
            runtime.hit_engine,
            HONEYPOT,
            token,
            _request_info(),
            runtime.clock.now(),
            signer=_signer(),
        ):
            _judge_later(runtime)
    except Exception:
        log.exception("honeypot: could not record a hit")
    return _page("blank.html", 200)


@bp.get("/u/", defaults={"token": ""}, merge_slashes=False)
@bp.get("/u/<path:token>", merge_slashes=False)
def unsubscribe_page(token: str) -> Response:
    """A confirmation page with a button; GET changes nothing (scanners prefetch links)."""
    if unsubscribe_token_message(token, signer=_signer()) is None:
        return _page("invalid_link.html", 404)
    return _page("unsubscribe.html", 200)


@bp.post("/u/", defaults={"token": ""}, merge_slashes=False)
@bp.post("/u/<path:token>", merge_slashes=False)
def unsubscribe_post(token: str) -> Response:
    """Unsubscribe: RFC 8058 one-click from a mail provider, or our page's button.

    Both send ``List-Unsubscribe=One-Click`` (the page's button carries it as its name and
    value), so there is one rule: a POST with it unsubscribes, any other POST shows the
    confirmation form again. No CSRF token: there is no session or cookie to ride on, the
    signed token in the URL is the whole authority, and it only ever unsubscribes its own
    recipient, idempotently. The answer is the same page whether or not the message still
    exists or was already unsubscribed.
    """
    if not _asks_to_unsubscribe():
        return _page("unsubscribe.html", 400)
    message_id = unsubscribe_token_message(token, signer=_signer())
    if message_id is None:
        return _page("invalid_link.html", 404)
    runtime = get_runtime()
    source = "unsubscribe-page" if request.form.get("via") == "page" else "one-click"
    unsubscribe(runtime.uow(), message_id, runtime.clock.now(), source)
    return _page("unsubscribed.html", 200)


def _asks_to_unsubscribe() -> bool:
    """True when the body is ``List-Unsubscribe=One-Click``, as a form field (urlencoded or
    multipart, RFC 8058 allows both) or, leniently, as a raw body of another type."""
    request.max_content_length = _MAX_BODY
    name, value = _ONE_CLICK
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get(name, "").strip() == value
    raw = request.get_data(cache=False, as_text=True)
    return raw.strip() == f"{name}={value}"
