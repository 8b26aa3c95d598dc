"""``GET /healthz``: is this process able to do its work right now?

Load balancers and ``nurture up``'s operator read it. It checks what a request or a job
would need (a database round trip; Redis, when jobs go there) and answers 503 naming the
part that failed, so a red health check says where to look. Exception details go to the
log, not the response: the endpoint is public and error messages can carry host names.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from webapp.extensions import get_runtime

__all__ = ["bp", "nurture_version"]

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@cache
def nurture_version() -> str:
    """The installed package's version (``0+unknown`` when run from a bare checkout)."""
    try:
        return version("nurture")
    except PackageNotFoundError:
        return "0+unknown"


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    runtime = get_runtime()
    body: dict[str, Any] = {
        "status": "ok",
        "database": "ok",
        "queue": runtime.queue.kind,
        "version": nurture_version(),
    }
    failing: list[str] = []
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        log.exception("health: database check failed")
        body["database"] = "unreachable"
        failing.append("database")
    if runtime.queue.kind == "redis":
        try:
            runtime.queue.ping()
            body["redis"] = "ok"
        except Exception:
            log.exception("health: Redis check failed")
            body["redis"] = "unreachable"
            failing.append("redis")
    if failing:
        body["status"] = "unavailable"
        body["failing"] = failing
        return jsonify(body), 503
    return jsonify(body)
