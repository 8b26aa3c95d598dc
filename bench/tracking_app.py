"""The WSGI app ``bench/tracking.py`` serves under gunicorn: the real app plus its baseline.

    gunicorn -c python:webapp.gunicorn_config -k gthread -w 2 --threads 8 bench.tracking_app:app

Built from ``NURTURE_*`` variables like ``wsgi:app``, with the benchmark's baseline route
(an empty 200 through the same app, hooks and server: the floor the endpoints are compared
with).
"""

from __future__ import annotations

from bench.tracking import with_baseline
from engine.config import Settings
from webapp import create_app

app = with_baseline(create_app(Settings.from_env()))
