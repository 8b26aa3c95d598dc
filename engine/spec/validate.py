"""Checks that need a whole sequence (or scoring file), beyond what each model sees alone.

The pydantic models accept or refuse one value at a time; a sequence can still be wrong as a
whole: a goto to a step that does not exist, a step no path reaches, a loop that would mail
someone back-to-back, a template nobody created. These checks run on a validated spec and
return ``(data path, message)`` pairs so the loader can attach the YAML line of each one,
while the web editor (which has no YAML) can still show the messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from engine.spec.catalog import suggest
from engine.spec.conditions import AllOf, AnyOf, Condition, EventCondition, NotOf
from engine.spec.errors import DataPath, step_label
from engine.spec.flow import Finding, check_flow, step_targets
from engine.spec.scoring import ScoringSpec
from engine.spec.sequence import (
    BranchStep,
    EmailStep,
    SequenceSpec,
    SplitStep,
    WaitStep,
    WaitUntil,
)

# Events every prospect gets whatever they do: points for them would hand back everyone.
_NOT_ENGAGEMENT = frozenset({"email.sent", "email.delivered"})


class TemplateCatalog(Protocol):
    """What validation needs to know about email templates, without reading files itself.

    ``engine.mail.catalog.FileTemplateCatalog`` is the real one; keeping this a protocol
    keeps ``engine.spec`` free of Jinja, MJML and the file system.
    """

    def exists(self, key: str) -> bool:
        """True when the template ``key`` (e.g. ``price/value-recap``) exists."""
        ...

    def check_text(self, text: str) -> str | None:
        """Check a Jinja snippet (a subject line); return a message if it is broken."""
        ...

    def check_template(self, key: str) -> list[str]:
        """Check the template file itself (Jinja and MJML); return its errors."""
        ...

    def variables(self, key: str) -> frozenset[str] | None:
        """The variables the template (with its partials) uses; None if it is broken."""
        ...


def validate_sequence(spec: SequenceSpec, templates: TemplateCatalog | None) -> list[Finding]:
    """Every whole-sequence problem of ``spec``, each with the data path it belongs to.

    ``templates=None`` skips the template checks (for callers with no template folder,
    e.g. validating a sequence pasted into the API before its templates are uploaded).
    """
    findings: list[Finding] = []
    ids = spec.step_ids()
    findings += _check_step_ids(spec)
    targets = _check_targets(spec, ids)
    findings += targets
    findings += _check_since(spec, ids)
    findings += check_flow(spec, reachability=not targets)
    if templates is not None:
        findings += _check_templates(spec, templates)
    # Sequence-level findings first, then step by step, as the file reads.
    return sorted(findings, key=lambda f: _step_order(f[0]))


def sequence_warnings(spec: SequenceSpec, templates: TemplateCatalog | None) -> list[Finding]:
    """What is allowed but probably not meant, each with its data path: a step's
    ``preheader`` whose template never shows one (it would be silently dropped), a split
    whose weights look like percentages that do not add up to 100."""
    findings = _split_warnings(spec)
    if templates is None:
        return findings
    used: dict[str, frozenset[str] | None] = {}
    for i, step in enumerate(spec.steps):
        if not isinstance(step, EmailStep) or not step.preheader:
            continue
        if step.email not in used:
            used[step.email] = templates.variables(step.email)
        names = used[step.email]
        if names is not None and "preheader" not in names:
            findings.append(
                (
                    ("steps", i, "preheader"),
                    f"{step_label(i, step)}: the preheader is never shown: template "
                    f"{step.email!r} has no {{{{ preheader }}}}; add "
                    "<mj-preview>{{ preheader }}</mj-preview> to its <mj-head> (as "
                    "_partials/head.mjml does), or remove the preheader",
                )
            )
    return findings


def _split_warnings(spec: SequenceSpec) -> list[Finding]:
    """Weights of 45 and 45 are shares (50% each), but whoever wrote them probably meant
    percentages and forgot a variant: say what the shares really are."""
    findings: list[Finding] = []
    for i, step in enumerate(spec.steps):
        if not isinstance(step, SplitStep):
            continue
        total = step.total_weight
        if total != 100 and 80 <= total <= 120:
            shares = ", ".join(f"{v.variant!r} {v.weight / total:.1%}" for v in step.split)
            findings.append(
                (
                    ("steps", i, "split"),
                    f"{step_label(i, step)}: the weights add up to {total}, not 100: they are "
                    f"shares, so the variants get {shares}; make them add up to 100 if you "
                    "meant percentages",
                )
            )
    return findings


def _step_order(path: DataPath) -> int:
    """0 for sequence-level paths, then 1 + the step index."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        return path[1] + 1
    return 0


def validate_scoring(spec: ScoringSpec) -> list[Finding]:
    """Scoring problems no single rule can see: duplicates and points for non-engagement."""
    findings: list[Finding] = []
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for i, rule in enumerate(spec.rules):
        signature = (rule.event, tuple(sorted(rule.where.items())))
        if signature in seen:
            first = seen[signature]
            findings.append(
                (
                    ("rules", i),
                    f"rule {i + 1} ({rule.label}) matches exactly the same events as rule "
                    f"{first + 1}: every such event would score twice; merge them into one "
                    "rule or give this one a different filter",
                )
            )
        else:
            seen[signature] = i
        if rule.event in _NOT_ENGAGEMENT and rule.points > 0:
            findings.append(
                (
                    ("rules", i, "event"),
                    f"rule {i + 1} ({rule.label}) gives points for {rule.event!r}, which every "
                    "prospect gets without doing anything: score what people do instead "
                    "(email.opened, email.clicked, page.visited, ...)",
                )
            )
    for i, cond in enumerate(spec.fast_track):
        if cond.since is not None:
            findings.append(
                (
                    ("fast_track", i, "since"),
                    f"fast_track {i + 1} ({cond.event}) uses 'since', but scoring belongs to no "
                    "sequence step: use 'within' or remove it",
                )
            )
    return findings


# --- step ids and references ---------------------------------------------------------


def _check_step_ids(spec: SequenceSpec) -> list[Finding]:
    findings: list[Finding] = []
    first_at: dict[str, int] = {}
    auto = {f"step-{i + 1}": i for i, step in enumerate(spec.steps) if step.id is None}
    for i, step in enumerate(spec.steps):
        if step.id is None:
            continue
        if step.id in first_at:
            findings.append(
                (
                    ("steps", i, "id"),
                    f"{step_label(i, step)}: the id {step.id!r} is already used by step "
                    f"{first_at[step.id] + 1}: give each step its own id",
                )
            )
        elif step.id in auto:
            findings.append(
                (
                    ("steps", i, "id"),
                    f"{step_label(i, step)}: the id {step.id!r} is the automatic name of "
                    f"step {auto[step.id] + 1}, which has no id: choose another id",
                )
            )
        else:
            first_at[step.id] = i
    return findings


def _unknown_step(name: str, ids: list[str]) -> str:
    hint = suggest(name, ids)
    return hint if hint else f"; the steps are: {', '.join(ids)}"


def _check_targets(spec: SequenceSpec, ids: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for i, step in enumerate(spec.steps):
        for path, target, word in step_targets(step):
            if target not in ids:
                findings.append(
                    (
                        ("steps", i, *path),
                        f"{step_label(i, step)}: {word} {target!r} names no step"
                        f"{_unknown_step(target, ids)}",
                    )
                )
    return findings


def iter_event_conditions(
    cond: Condition, path: DataPath
) -> Iterator[tuple[DataPath, EventCondition]]:
    """Every event condition in a tree with its data path (YAML keys, not field names)."""
    if isinstance(cond, AllOf):
        for k, c in enumerate(cond.all):
            yield from iter_event_conditions(c, (*path, "all", k))
    elif isinstance(cond, AnyOf):
        for k, c in enumerate(cond.any):
            yield from iter_event_conditions(c, (*path, "any", k))
    elif isinstance(cond, NotOf):
        yield from iter_event_conditions(cond.not_, (*path, "not"))
    elif isinstance(cond, EventCondition):
        yield path, cond


def _sequence_conditions(spec: SequenceSpec) -> Iterator[tuple[DataPath, EventCondition, str]]:
    """Event conditions with their path and a label for the place they appear in."""
    for p, c in iter_event_conditions(spec.enroll.when, ("enroll", "when")):
        yield p, c, "enroll.when"
    if spec.exit_when is not None:
        for p, c in iter_event_conditions(spec.exit_when, ("exit_when",)):
            yield p, c, "exit_when"
    for i, step in enumerate(spec.steps):
        label = step_label(i, step)
        if isinstance(step, BranchStep):
            for j, arm in enumerate(step.arms):
                for p, c in iter_event_conditions(arm.if_, ("steps", i, "branch", j, "if")):
                    yield p, c, label
        elif isinstance(step, WaitStep) and isinstance(step.wait, WaitUntil):
            yield ("steps", i, "wait", "until"), step.wait.until, label


def _check_since(spec: SequenceSpec, ids: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for path, cond, label in _sequence_conditions(spec):
        if cond.since is None:
            continue
        where = (*path, "since")
        if path[:1] == ("enroll",):
            findings.append(
                (
                    where,
                    f"{label}: 'since: {cond.since}' cannot be used to enroll: the prospect is "
                    "not in the sequence yet; use 'within' (e.g. within: 30d) instead",
                )
            )
        elif cond.since not in ids:
            findings.append(
                (
                    where,
                    f"{label}: since {cond.since!r} names no step{_unknown_step(cond.since, ids)}",
                )
            )
        else:
            target = spec.steps[ids.index(cond.since)]
            if not isinstance(target, EmailStep):
                emails = [ids[k] for k, s in enumerate(spec.steps) if isinstance(s, EmailStep)]
                findings.append(
                    (
                        where,
                        f"{label}: since {cond.since!r} must name an email step, but "
                        f"{cond.since!r} is a {type(target).__name__.removesuffix('Step').lower()}"
                        f" step; email steps: {', '.join(emails) or 'none'}",
                    )
                )
    return findings


def _check_templates(spec: SequenceSpec, templates: TemplateCatalog) -> list[Finding]:
    findings: list[Finding] = []
    checked: dict[str, list[str]] = {}
    for i, step in enumerate(spec.steps):
        if not isinstance(step, EmailStep):
            continue
        label = step_label(i, step)
        if not templates.exists(step.email):
            findings.append(
                (
                    ("steps", i, "email"),
                    f"{label}: template {step.email!r} not found: create "
                    f"templates/{step.email}.mjml",
                )
            )
        else:
            if step.email not in checked:
                checked[step.email] = templates.check_template(step.email)
            for error in checked[step.email]:
                findings.append(
                    (("steps", i, "email"), f"{label}: template {step.email!r}: {error}")
                )
        for key in ("subject", "preheader"):
            text = getattr(step, key)
            if text is None:
                continue
            problem = templates.check_text(text)
            if problem:
                findings.append(
                    (("steps", i, key), f"{label}: bad Jinja in {key} {text!r}: {problem}")
                )
    return findings
