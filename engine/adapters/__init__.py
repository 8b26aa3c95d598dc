"""Adapters: the code that talks to the outside world on the services' behalf.

The job queue (RQ on Redis, or a thread in this process), the Redis send-rate limiter and
the webhook HTTP client. Services never import this package: they receive these objects
from the composition root (``engine.runtime``) through the protocols in
``engine.services.ports``.
"""
