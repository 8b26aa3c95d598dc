"""``GET /healthz`` and ``GET /readyz``: is this process alive, and may it take traffic?

``/healthz`` is the liveness check load balancers and ``nurture up``'s operator read: what a
request or a job would need (a database round trip; Redis, when jobs go there), 503 naming
the part that failed, so a red health check says where to look.

``/readyz`` is stricter, for orchestrators that route traffic only to ready instances
(Kubernetes' readiness probe, a deploy script waiting between steps): the database must
also be migrated at least to the revision this code expects. New web processes that start
before ``nurture init`` has migrated report "not ready" (and keep running) instead of
answering requests with a schema they do not match; old ones stay ready when a newer
release has migrated past them (migrations keep the previous release working), so a
rolling deploy never takes every instance out at once.

Exception details go to the log, not the response: the endpoints are public and error
messages can carry host names.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from engine.runtime import Runtime
from engine.store import revision_on, schema_state
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
    _check_redis(runtime, body, failing)
    return _answer(body, failing, "unavailable")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    runtime = get_runtime()
    body: dict[str, Any] = {"status": "ready", "database": "ok", "queue": runtime.queue.kind}
    failing: list[str] = []
    try:
        with runtime.engine.connect() as connection:
            revision = revision_on(connection)
    except Exception:
        log.exception("readiness: database check failed")
        body["database"] = "unreachable"
        failing.append("database")
    else:
        state = schema_state(revision)
        if state == "behind":
            body["database"] = "not migrated: run nurture init"
            failing.append("database")
        elif state == "ahead":
            body["database"] = "migrated by a newer release"
    _check_redis(runtime, body, failing)
    return _answer(body, failing, "not ready")


def _check_redis(runtime: Runtime, body: dict[str, Any], failing: list[str]) -> None:
    """Ping Redis when jobs go there; without it no job would be queued."""
    if runtime.queue.kind != "redis":
        return
    try:
        runtime.queue.ping()
        body["redis"] = "ok"
    except Exception:
        log.exception("health: Redis check failed")
        body["redis"] = "unreachable"
        failing.append("redis")


def _answer(body: dict[str, Any], failing: list[str], bad_status: str) -> ResponseReturnValue:
    if failing:
        body["status"] = bad_status
        body["failing"] = failing
        return jsonify(body), 503
    return jsonify(body)
