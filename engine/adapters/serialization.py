"""How job calls are written to and read from Redis.

We write JSON (``rq.serializers.JSONSerializer``): a job whose arguments are not plain ids
and ISO strings fails at enqueue time instead of pickling an ORM object into Redis.

Reading needs one allowance. ``rq cron`` in RQ 3.0 enqueues with RQ's default pickle
serializer whatever ``--serializer`` says (``rq.cron.CronJob.enqueue`` builds
``Queue(name, connection=...)`` with no serializer), so a JSON-only worker fails every
cron-made job with ``DeserializationError``. ``JobSerializer.loads`` therefore also accepts a
pickle, but through an unpickler that refuses every global: the ``(func_name, None, args,
kwargs)`` tuple of plain strings, numbers, lists and dicts that ``rq cron`` writes loads, and
a payload that would import or construct anything is rejected before it can run code.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any, NoReturn

__all__ = ["JobSerializer"]

# Every pickle protocol >= 2 starts with the PROTO opcode; JSON text never starts with 0x80.
_PICKLE_PROTO = 0x80


class _PlainDataUnpickler(pickle.Unpickler):
    """Loads only what pickle can express without naming a class or function."""

    def find_class(self, module: str, name: str) -> NoReturn:
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a job payload: "
            "Nurture jobs carry only ids and ISO strings"
        )

    def persistent_load(self, pid: Any) -> NoReturn:
        raise pickle.UnpicklingError("refusing a persistent id in a job payload")


class JobSerializer:
    """RQ serializer: JSON out; JSON or plain-data pickle (from ``rq cron``) in."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode("utf-8")

    @staticmethod
    def loads(data: bytes) -> Any:
        if data[:1] == bytes([_PICKLE_PROTO]):
            return _PlainDataUnpickler(io.BytesIO(data)).load()
        return json.loads(data.decode("utf-8"))
