"""WSGI entry point: ``gunicorn wsgi:app``.

The only module that builds an app at import, because a WSGI server imports a module and
looks up a name; everything else calls ``create_app`` with its own settings.
"""

from engine.config import Settings
from webapp import create_app
from webapp.logs import configure_logging

settings = Settings.from_env()
configure_logging(settings.log_level, settings.log_format)
app = create_app(settings)
