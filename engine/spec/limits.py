"""How big a sequence or scoring file may be, and why each bound is where it is.

A spec file is input from outside (a file in a pull request, the web editor, the API's
``POST /sequences/validate``). Each bound is checked *before* the costly part it protects:
the size before reading or parsing, the characters before the YAML reader, the nesting and
the aliases before a single node is built, the steps before any of them is validated, the
digits of a duration before the arithmetic. Every bound is generous for real sequences
(the shipped ones are 2-3 KB, 7 steps, at most 8 levels deep, no alias) and a small fraction
of what made the validator fall over.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "MAX_DURATION",
    "MAX_NESTING",
    "MAX_SPEC_BYTES",
    "MAX_STEPS",
    "MAX_VALUES",
    "MIN_LOOP_ROUND",
]

MAX_SPEC_BYTES = 256 * 1024
"""The largest spec file, in UTF-8 bytes: a hundred times the longest shipped sequence. A
10 MB file took 210 s and 2 GB to validate; this one takes well under a second."""

MAX_STEPS = 500
"""The most steps a sequence holds. A real nurture has a few dozen; hundreds mean a
generated file, which should be several sequences."""

MAX_NESTING = 32
"""How deeply lists and mappings may nest (the JSON API's own limit). A condition three
``all``/``any``/``not`` deep inside a branch is about 12 levels."""

MAX_VALUES = 50_000
"""The most values (keys, items, scalars) a file may hold once its aliases are expanded.
A "billion laughs" file is a few hundred bytes that expand to 10^9 values; refusing it
while counting, before anything is built, keeps it a few milliseconds."""

MAX_DURATION = timedelta(days=3650)
"""The longest duration anywhere in the language (ten years: a wait, a re-enrollment
delay, an event window). Longer is a typo, and ``99999999999999999999d`` would overflow
the date arithmetic."""

MIN_LOOP_ROUND = timedelta(days=1)
"""The least time a loop that can send an email must wait per round (see
``sequences/README.md``, "Loops"): the frequency cap counts whole days and no nurture
cadence is faster than daily, so a faster loop could only pile up mail the cap holds."""
