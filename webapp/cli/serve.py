"""The all-in-one server behind ``nurture up``: web app, scheduler and worker in one process.

It lives with the command line because it composes the web app and the workers' scheduler,
which otherwise never import each other.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.config import Settings
from webapp.app import create_app
from webapp.extensions import get_runtime
from workers.scheduler import run_scheduler

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from engine.runtime import Runtime

__all__ = ["SHUTDOWN_GRACE_SECONDS", "serve_all_in_one"]

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
"""How long ``serve_all_in_one`` lets the running job finish before it stops anyway."""


def serve_all_in_one(
    settings: Settings,
    host: str,
    port: int,
    stop_event: threading.Event | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Migrate, then serve the web app, the scheduler and (without Redis) the worker.

    Blocks until ``stop_event`` is set. Without a ``stop_event`` it makes one and sets it on
    SIGINT/SIGTERM (only possible from the main thread); a caller that passes its own event
    owns signal handling. ``on_ready`` receives the base URL once the socket is listening
    (useful with ``port=0``). On the way out it stops accepting requests, stops the
    scheduler, lets the running job finish (up to ``SHUTDOWN_GRACE_SECONDS``) and closes the
    database pool; whatever was still queued is re-driven by the next tick. If the port is
    taken, Werkzeug prints why and raises ``SystemExit(1)``.
    """
    server, runtime = _open(settings, host, port)
    stop = stop_event if stop_event is not None else threading.Event()
    base_url = f"http://{host}:{server.server_port}"
    web = threading.Thread(target=server.serve_forever, name="nurture-web", daemon=True)
    scheduler = threading.Thread(
        target=run_scheduler,
        args=(runtime, settings.tick_interval_seconds, stop),
        name="nurture-scheduler",
        daemon=True,
    )
    with _signals_set(stop, enabled=stop_event is None):
        try:
            web.start()
            scheduler.start()
            if runtime.queue.kind == "redis":
                log.warning("jobs go to Redis: run `nurture worker` (one or more) to process them")
            else:
                log.info("jobs run in this process (no NURTURE_REDIS_URL set)")
            log.info("Nurture is serving on %s", base_url)
            if on_ready is not None:
                on_ready(base_url)
            stop.wait()
        finally:
            stop.set()
            _close(server, web, scheduler, runtime)


def _open(settings: Settings, host: str, port: int) -> tuple[BaseWSGIServer, Runtime]:
    """Migrate, build the app and bind its socket; nothing runs yet. If binding fails (the
    port is taken: ``SystemExit``) the database pool the app opened is released."""
    from werkzeug.serving import make_server

    from engine.store import upgrade

    upgrade(settings.database_url)
    app = create_app(settings)
    runtime = get_runtime(app)
    try:
        return make_server(host, port, app, threaded=True), runtime
    except BaseException:
        runtime.close()
        raise


def _close(
    server: BaseWSGIServer, web: threading.Thread, scheduler: threading.Thread, runtime: Runtime
) -> None:
    """Stop accepting requests, stop the scheduler, let the running job finish (up to
    ``SHUTDOWN_GRACE_SECONDS``) and close the pool: queued jobs wait for the next tick."""
    log.info("shutting down")
    if web.is_alive():  # shutdown() waits for serve_forever: never call it without
        server.shutdown()
    server.server_close()
    if scheduler.ident is not None:
        scheduler.join(SHUTDOWN_GRACE_SECONDS)
    runtime.close(SHUTDOWN_GRACE_SECONDS)


@contextmanager
def _signals_set(stop: threading.Event, *, enabled: bool) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set ``stop``; the old handlers come back after."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
