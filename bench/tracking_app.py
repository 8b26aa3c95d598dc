"""The WSGI app the HTTP benchmarks (``bench/tracking.py``, ``bench/ingest.py``) serve under
gunicorn: the real app plus the baseline routes.

    gunicorn -c python:webapp.gunicorn_config -k gthread -w 2 --threads 8 bench.tracking_app:app

Built from ``NURTURE_*`` variables like ``wsgi:app``, with the benchmarks' baseline routes
(an empty 200 through the same app, hooks and server: the floor the endpoints are compared
with).
"""

from __future__ import annotations

from bench.serving import with_baseline
from engine.config import Settings
from webapp import create_app

app = with_baseline(create_app(Settings.from_env()))
