"""The web app: Flask app factory, blueprints, and the ``nurture`` command line."""

from webapp.app import create_app

__all__ = ["create_app"]
