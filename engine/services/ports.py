"""What services need from the outside world, as small protocols.

Services receive implementations from the composition root (``engine.runtime``) and never
build or import them, so a test hands a service a fake it wrote itself and a deployment
swaps Redis for a local limiter without a service noticing. The implementations live in
``engine.adapters``; the SMTP transport and the clock have their own protocols
(``engine.mail.transport.Transport``, ``engine.clock.Clock``).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["FlaggedQueue", "RateLimiter", "WebhookPoster"]


class FlaggedQueue(Protocol):
    """The job queue as a service that coalesces work sees it: queue a job of
    ``workers.jobs`` by name, and a flag with a ttl that says "a job is already pending"
    (``engine.adapters.jobqueue.JobQueue`` on Redis or in process)."""

    def enqueue_by_path(self, path: str, *args: str | int | list[str | int]) -> bool:
        """Queue the job function named by ``path``; True when it was queued."""

    def set_flag(self, name: str, ttl: int, *, replace: bool = False) -> bool:
        """Raise the flag ``name`` for ``ttl`` seconds; True when this call raised it
        (or, with ``replace``, raised it again)."""

    def clear_flag(self, name: str) -> None:
        """Lower the flag ``name``."""


class RateLimiter(Protocol):
    """A send-rate limit shared by every sender that uses the same instance (or Redis)."""

    def acquire(self, key: str) -> None:
        """Block until one more send under ``key`` fits in the limit."""


class WebhookPoster(Protocol):
    """Delivers one signed webhook body over HTTP."""

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` to ``url`` and return the HTTP status; an HTTP error status is a
        return value, while a connection failure or timeout raises ``OSError``."""
