"""The web app: Flask app factory, blueprints, and the ``nurture`` command line.

``create_app`` is imported on first use, not with the package: ``webapp.gunicorn_config``
lives here and must load without importing the app (and with it prometheus-client)
into gunicorn's master process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webapp.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from webapp.app import create_app

        return create_app
    raise AttributeError(f"module 'webapp' has no attribute {name!r}")
