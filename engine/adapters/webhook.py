"""The webhook HTTP client: one POST per delivery, standard library only.

Implements ``engine.services.ports.WebhookPoster``. Retries, signing and bookkeeping are the
alerts service's business; this only turns a POST into a status code or an ``OSError``.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

__all__ = ["HttpWebhookPoster"]


class HttpWebhookPoster:
    """POSTs with a timeout (``NURTURE_WEBHOOK_TIMEOUT_SECONDS``), so a receiver that hangs
    costs one alert job that long, not a worker forever."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"the webhook timeout must be positive, got {timeout}")
        self.timeout = timeout

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """Return the HTTP status (an error status is returned, not raised); a connection
        failure, a timeout or a garbled response raises ``OSError``."""
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except http.client.HTTPException as exc:  # not an OSError: a malformed response
            raise ConnectionError(f"bad HTTP response: {exc!r}") from exc

    def __repr__(self) -> str:
        return f"HttpWebhookPoster(timeout={self.timeout})"
