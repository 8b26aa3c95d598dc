"""The Flask app factory."""

from __future__ import annotations

from flask import Flask

from engine.config import Settings
from engine.runtime import Runtime
from webapp import api, auth, decisions, health, metrics, outbox, tracking
from webapp.converters import IdConverter
from webapp.extensions import init_runtime
from webapp.nav import init_nav
from webapp.pages import (
    audit,
    errors,
    funnel,
    home,
    imports,
    inbound,
    inbox,
    patterns,
    prospects,
    qualified,
    reports,
    sequence_editor,
    sequences,
    simulator,
    templates,
    templates_editor,
    tokens,
    users,
)
from webapp.security import init_security

__all__ = ["BLUEPRINTS", "create_app"]


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the web app for ``settings`` (default: from the environment).

    Pass ``runtime`` to share one database pool and job queue with a scheduler and worker in
    the same process (``webapp.cli.serve.serve_all_in_one`` does); otherwise the app builds
    its own.
    Building the app connects to nothing.
    """
    if runtime is not None and settings is not None and runtime.settings is not settings:
        raise ValueError("create_app: settings and runtime.settings differ; pass one of them")
    if settings is None:
        settings = runtime.settings if runtime is not None else Settings.from_env()
    app = Flask(__name__)
    # The largest request any page accepts (a CSV upload), refused before it is read; the
    # API and the tracking endpoints set tighter limits per request.
    app.config.update(
        SECRET_KEY=settings.secret_key,
        NURTURE_SETTINGS=settings,
        MAX_CONTENT_LENGTH=imports.MAX_REQUEST_BYTES,
    )
    init_runtime(app, runtime if runtime is not None else Runtime.from_settings(settings))
    init_security(app, settings)
    init_nav(app)
    app.url_map.converters["id"] = IdConverter
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    metrics.init_app(app)  # serves /metrics (its own bearer token) and times ingest
    errors.init_error_pages(app)  # after the API's: it defers to the API's JSON errors
    return app


BLUEPRINTS = (
    health,
    tracking,
    decisions,
    api,
    auth,
    home,
    inbox,
    funnel,
    outbox,
    prospects,
    qualified,
    reports,
    sequences,
    sequence_editor,
    simulator,
    templates,
    templates_editor,
    inbound,
    imports,
    users,
    tokens,
    audit,
    patterns,
)
"""Every blueprint of the app, in registration order (the API before the error pages)."""
