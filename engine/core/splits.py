"""Which variant of an A/B split a prospect goes down: a weighted draw that never changes.

A split must send the same prospect down the same branch every time it is asked: when the
tick retries a batch, when the simulator rehearses the sequence, when a rejected lead comes
back to the nurture that produced it. A random number would give a different answer each
time; a stable hash of *(sequence key, split step id, prospect)* gives the same one
forever, on every host, with nothing to store before the first answer.

The hash (SHA-256, the first 8 bytes as a number) is reduced to a **bucket** from 0 to
``total - 1``, where ``total`` is the sum of the weights; the variants own consecutive
bucket ranges in the order they are written (weights 50/50: buckets 0-49 go to the first,
50-99 to the second). SHA-256 spreads ids evenly, so over many prospects each variant's
share tends to its weight's share. Because the sequence key and the split's id are part of
the hash, two splits (in one sequence or in two) draw independently: being in variant A of
one test says nothing about the variant of another.

What the hash does not do is remember: if the weights change (a new version), the bucket
ranges move and some prospects' draw would land in another variant. That is why the
enrollment records the variant the first time it reaches the split and keeps it (see
``engine.core.stepping``): a prospect already split stays where they were, and only new
arrivals are drawn under the new weights. Renaming a variant moves nobody; reordering
variants or changing weights moves new draws only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Draw", "bucket", "draw", "unit_of"]

_SALT = b"nurture-split\x00"


@dataclass(frozen=True)
class Draw:
    """A prospect's draw at one split: the variant, and the numbers that explain it."""

    variant: str
    index: int  # the variant's position in the split, 0-based
    bucket: int  # 0 .. total - 1
    total: int  # the sum of the weights
    low: int  # the variant owns buckets low .. high - 1
    high: int

    @property
    def share(self) -> float:
        """The variant's share of all prospects, from 0 to 1 (its weight over the total)."""
        return (self.high - self.low) / self.total

    def explain(self) -> str:
        """Why this variant, in one line: ``'b': bucket 73 of 0-99; 'b' has buckets 50-99
        (weight 50 of 100, 50%)``."""
        return (
            f"bucket {self.bucket} of 0-{self.total - 1}; {self.variant!r} has buckets "
            f"{self.low}-{self.high - 1} (weight {self.high - self.low} of {self.total}, "
            f"{self.share:.0%})"
        )


def bucket(sequence_key: str, step_id: str, unit: str, total: int) -> int:
    """The prospect's bucket, from 0 to ``total - 1``, the same on every call and host.

    ``unit`` names the prospect (``unit_of``). The fields are joined with NUL bytes, which
    no key, step id or id contains, so ("ab", "c") and ("a", "bc") never collide. Taking
    a 64-bit number modulo a total of at most a few thousand leaves a bias below 1e-15.
    """
    if total < 1:
        raise ValueError(f"a split needs a positive total weight, got {total}")
    text = "\x00".join((sequence_key, step_id, unit)).encode("utf-8")
    digest = hashlib.sha256(_SALT + text).digest()
    return int.from_bytes(digest[:8], "big") % total


def draw(sequence_key: str, step_id: str, unit: str, variants: Sequence[tuple[str, int]]) -> Draw:
    """The variant (from ``(name, weight)`` pairs, in the order written) for this prospect."""
    total = sum(weight for _, weight in variants)
    point = bucket(sequence_key, step_id, unit, total)
    low = 0
    for index, (name, weight) in enumerate(variants):
        if point < low + weight:
            return Draw(name, index, point, total, low, low + weight)
        low += weight
    raise AssertionError("a bucket below the total falls in some variant's range")


def unit_of(prospect: Mapping[str, Any]) -> str | None:
    """What names the prospect in the hash: its row id, which never changes (an address
    can). None for a prospect without one: an imaginary prospect in a simulation."""
    prospect_id = prospect.get("id")
    return None if prospect_id is None else str(prospect_id)
