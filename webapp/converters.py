"""URL converters the pages share.

``<id:name>`` is a row id: a whole number from 1 to 2**63 - 1, the range of the store's
64-bit ids (``engine.services.validation.MAX_ID``, the rule the API and the CLI use too).
Anything else matches no route (404) instead of reaching the database, where a number past
the range is an error of the driver, not an absent row.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from engine.services.validation import MAX_ID

__all__ = ["MAX_ID", "IdConverter"]


class IdConverter(IntegerConverter):
    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)
