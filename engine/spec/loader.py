"""Read sequence and scoring files, and say exactly where and why one is wrong.

YAML is composed into nodes (never constructed into arbitrary objects) so every key and
list item keeps its line; pydantic validates the plain data; its errors, and the semantic
findings of :mod:`engine.spec.validate`, are translated into :class:`SpecProblem` lines a
marketer can act on: ``sequences/lost-on-price.yaml:14: step 'nudge': goto 'case-stuy'
names no step (did you mean 'case-study'?)``.

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: ``no``/``off`` stay text (a
``lost_reason: no_decision`` list or a Norwegian ``country: NO`` must not turn into
``False``), ``9:00`` stays a time of day rather than the sexagesimal number 540, and
``010`` is not octal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.spec.errors import DataPath, SpecError, SpecProblem
from engine.spec.limits import MAX_SPEC_BYTES
from engine.spec.locate import _locate
from engine.spec.problems import _allowed_keys, _line_of, _model_problems
from engine.spec.repair import flow_findings
from engine.spec.scoring import ScoringSpec
from engine.spec.sequence import SequenceSpec
from engine.spec.validate import (
    TemplateCatalog,
    sequence_warnings,
    validate_scoring,
    validate_sequence,
)
from engine.spec.yaml_lines import LineMap, _compose, compose

__all__ = [
    "LoadedSpecs",
    "SequenceCheck",
    "check_sequence",
    "compose",
    "load_scoring",
    "load_sequence",
    "load_specs",
    "parse_scoring",
    "parse_sequence",
    "spec_files",
    "validate_paths",
]

SCORING_FILENAMES = ("scoring.yaml", "scoring.yml")
SPEC_SUFFIXES = (".yaml", ".yml")

# --- parsing ----------------------------------------------------------------------------


@dataclass
class _Parsed:
    """A file's data, lines and problems; ``spec`` is None when it did not validate."""

    data: Any = None
    lines: LineMap = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)
    spec: Any = None
    warnings: list[SpecProblem] = field(default_factory=list)


def _parse(
    text: str,
    filename: str,
    model: type[BaseModel],
    what: str,
    templates: TemplateCatalog | None = None,
) -> _Parsed:
    data, lines, problems, unreadable = _compose(text, filename)
    parsed = _Parsed(data, lines, list(problems))
    if data is None and problems:
        return parsed
    if not isinstance(data, dict):
        parsed.problems.append(
            SpecProblem(
                filename,
                lines.get(()),
                f"a {what} file is a mapping of keys ({', '.join(_allowed_keys(model)[:4])}, "
                f"...), got {type(data).__name__}",
            )
        )
        return parsed
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        parsed.problems += _refused(exc, model, data, lines, unreadable, filename, templates)
        parsed.problems.sort(key=lambda p: p.line or 0)
        return parsed
    if isinstance(spec, SequenceSpec):
        findings = validate_sequence(spec, templates)
    elif isinstance(spec, ScoringSpec):
        findings = validate_scoring(spec)
    else:
        findings = []
    for path, message in findings:
        parsed.problems.append(SpecProblem(filename, _line_of(path, lines), message))
    parsed.problems.sort(key=lambda p: p.line or 0)
    if not parsed.problems:
        parsed.spec = spec
        if isinstance(spec, SequenceSpec):
            parsed.warnings = [
                SpecProblem(filename, _line_of(path, lines), message, warning=True)
                for path, message in sequence_warnings(spec, templates)
            ]
    return parsed


def _refused(
    exc: ValidationError,
    model: type[BaseModel],
    data: dict[Any, Any],
    lines: LineMap,
    unreadable: Iterable[DataPath],
    filename: str,
    templates: TemplateCatalog | None,
) -> list[SpecProblem]:
    """The problems of a file pydantic refused: each error at its line and in words, and
    for a sequence the flow findings of what could be read."""
    located = [_locate(model, data, err) for err in exc.errors()]
    # A value YAML could not read is already reported; its stand-in None is no news.
    located = [
        item for item in located if not any(item.path[: len(bad)] == bad for bad in unreadable)
    ]
    problems = _model_problems(located, data, lines, filename)
    if model is SequenceSpec:
        # Still check the flow (gotos, reachability, loops) of what could be read, so a
        # marketer sees the typo in a goto together with the bad duration two lines up.
        for path, message in flow_findings(data, located, templates):
            problems.append(SpecProblem(filename, _line_of(path, lines), message))
    return problems


@dataclass(frozen=True)
class SequenceCheck:
    """A sequence's verdict: the spec when it is valid, its problems and its warnings."""

    spec: SequenceSpec | None
    problems: list[SpecProblem]
    warnings: list[SpecProblem]


def check_sequence(
    text: str, filename: str, templates: TemplateCatalog | None = None
) -> SequenceCheck:
    """Validate a sequence's YAML ``text`` without raising: what the web editor and
    ``POST /api/v1/sequences/validate`` show (warnings only come with a valid spec)."""
    parsed = _parse(text, filename, SequenceSpec, "sequence", templates)
    return SequenceCheck(parsed.spec, parsed.problems, parsed.warnings)


def parse_sequence(
    text: str, filename: str, templates: TemplateCatalog | None = None
) -> SequenceSpec:
    """Validate a sequence's YAML ``text``; raise :class:`SpecError` listing every problem.

    ``filename`` only labels the problems (the web editor passes the sequence's name).
    """
    parsed = _parse(text, filename, SequenceSpec, "sequence", templates)
    if parsed.problems:
        raise SpecError(parsed.problems)
    return parsed.spec  # type: ignore[no-any-return]


def parse_scoring(text: str, filename: str) -> ScoringSpec:
    """Validate scoring YAML ``text``; raise :class:`SpecError` listing every problem."""
    parsed = _parse(text, filename, ScoringSpec, "scoring")
    if parsed.problems:
        raise SpecError(parsed.problems)
    return parsed.spec  # type: ignore[no-any-return]


def _read(path: Path) -> tuple[str | None, SpecProblem | None]:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:  # refused before reading: a 10 GB file costs nothing
            return None, SpecProblem(
                str(path),
                None,
                f"the file is {size:,} bytes; a spec file may be at most {MAX_SPEC_BYTES:,} "
                "bytes: split it into several sequences",
            )
        return path.read_text(encoding="utf-8"), None
    except UnicodeDecodeError as exc:
        return None, SpecProblem(
            str(path), None, f"not UTF-8 text ({exc.reason}): save it as UTF-8"
        )
    except OSError as exc:
        return None, SpecProblem(str(path), None, f"cannot read the file: {exc.strerror}")


def load_sequence(path: Path, templates: TemplateCatalog | None = None) -> SequenceSpec:
    """Read and validate one sequence file; raise :class:`SpecError` on any problem."""
    text, problem = _read(path)
    if problem is not None:
        raise SpecError([problem])
    return parse_sequence(text or "", str(path), templates)


def load_scoring(path: Path) -> ScoringSpec:
    """Read and validate a scoring file; raise :class:`SpecError` on any problem."""
    text, problem = _read(path)
    if problem is not None:
        raise SpecError([problem])
    return parse_scoring(text or "", str(path))


@dataclass
class LoadedSpecs:
    """Everything found under some paths: the valid specs and every problem."""

    sequences: dict[Path, SequenceSpec] = field(default_factory=dict)
    scoring: ScoringSpec | None = None
    scoring_path: Path | None = None
    problems: list[SpecProblem] = field(default_factory=list)
    warnings: list[SpecProblem] = field(default_factory=list)


def spec_files(paths: list[Path]) -> tuple[list[Path], list[SpecProblem]]:
    """The sequence and scoring files under ``paths``, and what is wrong with the paths.

    The one rule for finding them, which ``validate``, ``sync`` and ``init`` share: a
    directory contributes its own ``*.yaml``/``*.yml`` files (not its subdirectories'), in
    name order; a file named explicitly is taken whatever its suffix; a file reached twice
    is read once. An empty directory or a missing path is a problem.
    """
    problems: list[SpecProblem] = []
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                problems.append(SpecProblem(str(path), None, "no .yaml or .yml files here"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            problems.append(SpecProblem(str(path), None, "no such file or directory"))
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values()), problems


def load_specs(paths: list[Path], templates: TemplateCatalog | None = None) -> LoadedSpecs:
    """Load every sequence and the scoring file under ``paths`` (files or directories).

    In a directory every ``*.yaml``/``*.yml`` is read; ``scoring.yaml`` (or ``.yml``) is the
    scoring file, every other file a sequence. Problems of all files are collected, plus
    those between files: two sequences with the same key (neither is in ``sequences``),
    or two scoring files. ``nurture sequences validate`` reports them; ``sync`` stores
    the specs found valid here and nothing else.
    """
    out = LoadedSpecs()
    key_at: dict[str, tuple[Path, int | None]] = {}
    files, out.problems = spec_files(paths)
    for path in files:
        text, problem = _read(path)
        if problem is not None:
            out.problems.append(problem)
            continue
        if path.name in SCORING_FILENAMES:
            _add_scoring(out, path, text or "")
            continue
        parsed = _parse(text or "", str(path), SequenceSpec, "sequence", templates)
        out.problems += parsed.problems
        out.warnings += parsed.warnings
        if parsed.spec is not None:
            out.sequences[path] = parsed.spec
        key = parsed.data.get("key") if isinstance(parsed.data, dict) else None
        if isinstance(key, str):
            _claim_key(out, key_at, key, path, parsed.lines.get(("key",)))
    return out


def _add_scoring(out: LoadedSpecs, path: Path, text: str) -> None:
    """The scoring file, or a problem when it is the second: which one counts would
    depend on the order the files were found in."""
    parsed = _parse(text, str(path), ScoringSpec, "scoring")
    out.problems += parsed.problems
    if out.scoring_path is not None:
        out.problems.append(
            SpecProblem(
                str(path),
                None,
                f"a second scoring file (the first is {out.scoring_path}): keep one",
            )
        )
    else:
        out.scoring, out.scoring_path = parsed.spec, path


def _claim_key(
    out: LoadedSpecs,
    key_at: dict[str, tuple[Path, int | None]],
    key: str,
    path: Path,
    line: int | None,
) -> None:
    """Record that ``path`` (its ``key`` at ``line``) names sequence ``key``; a second file
    with the same key refuses both, since neither can be told to be the sequence."""
    if key not in key_at:
        key_at[key] = (path, line)
        return
    other, other_line = key_at[key]
    where = f"{other}:{other_line}" if other_line else str(other)
    out.problems.append(
        SpecProblem(
            str(path),
            line,
            f"sequence key {key!r} is already used by {where}: give each sequence its own key",
        )
    )
    out.sequences.pop(path, None)
    out.sequences.pop(other, None)  # neither is the sequence: both are refused


def validate_paths(paths: list[Path], templates: TemplateCatalog | None) -> list[SpecProblem]:
    """Every problem in the sequence and scoring files under ``paths``; empty when all good."""
    return load_specs(paths, templates).problems
