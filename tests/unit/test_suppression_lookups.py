"""Suppressions are looked up by hash, everywhere.

An erased person's address survives only as ``email_hash``; a check written as
``Suppression.email == address`` would not see it and would let that address be mailed
again. This test fails on any such comparison outside the store module that defines the
hash lookups (``Suppression.for_address`` / ``for_addresses``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "webapp", "workers")
ALLOWED = {ROOT / "engine" / "store" / "suppressions.py"}
LOOKUP = re.compile(r"Suppression\.email\s*(==|!=|\.in_\(|\.is_\(|\.ilike\(|\.like\()")


def test_no_code_compares_suppressions_by_plain_address() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path in ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if LOOKUP.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "look suppressions up with Suppression.for_address(...):\n" + "\n".join(
        offenders
    )


def test_the_pattern_catches_what_it_is_meant_to() -> None:
    assert LOOKUP.search("select(Suppression.id).where(Suppression.email == email)")
    assert LOOKUP.search("Suppression.email.in_(emails)")
    assert not LOOKUP.search("select(Suppression.email, Suppression.reason)")
