"""Deciding what a test does when a service it needs (PostgreSQL, Redis, ...) is missing."""

from __future__ import annotations

import os

import pytest


def require_service(name: str, available: bool, detail: str) -> None:
    """Skip the test when ``name`` is not available locally; fail it on CI.

    A laptop without PostgreSQL should still run the rest of the suite, but on CI
    (``CI=true``) a missing service is a broken pipeline, and a skip there would let the
    tests that need it silently stop running.
    """
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} not reachable on CI: {detail}", pytrace=False)
    pytest.skip(f"{name} not reachable: {detail}")
