"""Spec problems as marketers read them: ``file:line: what is wrong and how to fix it``.

Every layer that judges a spec (YAML syntax, the pydantic models, the semantic checks)
speaks this one vocabulary, so the CLI, the web editor and the tests show the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A position in the parsed data: keys and 0-based list indexes, e.g. ("steps", 3, "goto").
DataPath = tuple[str | int, ...]

STEP_KINDS = ("email", "wait", "branch", "split", "goto", "end")


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec file; ``line`` is 1-based, None when no line applies.

    A ``warning`` does not stop the file from being saved or run (a step's preheader that
    its template never shows): it is reported so the marketer can decide.
    """

    file: str
    line: int | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        message = f"warning: {self.message}" if self.warning else self.message
        if self.line is None:
            return f"{self.file}: {message}"
        return f"{self.file}:{self.line}: {message}"


class SpecError(Exception):
    """A spec file (or several) could not be accepted; ``problems`` lists every reason."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecValueError(ValueError):
    """A validator's complaint about one key *inside* the value it checked.

    Pydantic places a model validator's error on the whole model; ``at`` (a data path
    relative to that model) lets the loader point at the offending key's own line instead.
    """

    def __init__(self, message: str, at: DataPath = ()) -> None:
        super().__init__(message)
        self.at = at


def step_label(index: int, step: Any) -> str:
    """Name a step the way a marketer finds it: ``step 'nudge'`` or ``step 4 (wait)``.

    ``step`` may be a validated step model or the raw mapping from YAML, because problems
    are described both before and after the models accept the data.
    """
    step_id = _get(step, "id")
    if isinstance(step_id, str) and step_id:
        return f"step {step_id!r}"
    kind = step_kind(step)
    return f"step {index + 1} ({kind})" if kind else f"step {index + 1}"


def step_kind(step: Any) -> str | None:
    """The kind of a step model or raw mapping, or None when it has none (or several)."""
    if isinstance(step, Mapping):
        kinds = [k for k in STEP_KINDS if k in step]
        return kinds[0] if len(kinds) == 1 else None
    fields = getattr(type(step), "model_fields", {})
    kinds = [k for k in STEP_KINDS if k in fields]
    return kinds[0] if len(kinds) == 1 else None


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)
