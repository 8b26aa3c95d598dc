"""Where the web app keeps its runtime: ``app.extensions["nurture"]``.

Routes reach the database and the job queue through ``get_runtime()`` rather than module
globals, so two apps built with different settings (tests do this) never share a database.
"""

from __future__ import annotations

from flask import Flask, current_app

from engine.runtime import Runtime

__all__ = ["EXTENSION_KEY", "get_runtime", "init_runtime"]

EXTENSION_KEY = "nurture"


def init_runtime(app: Flask, runtime: Runtime) -> None:
    """Bind ``runtime`` to ``app`` (Flask's ``init_app`` pattern, for one object)."""
    app.extensions[EXTENSION_KEY] = runtime


def get_runtime(app: Flask | None = None) -> Runtime:
    """The runtime of ``app``, or of the app handling the current request."""
    target = app if app is not None else current_app
    try:
        runtime: Runtime = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "this Flask app has no Nurture runtime; build it with create_app"
        ) from None
    return runtime
