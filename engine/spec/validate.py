"""Checks that need a whole sequence (or scoring file), beyond what each model sees alone.

The pydantic models accept or refuse one value at a time; a sequence can still be wrong as a
whole: a goto to a step that does not exist, a step no path reaches, a loop that would mail
someone back-to-back, a template nobody created. These checks run on a validated spec and
return ``(data path, message)`` pairs so the loader can attach the YAML line of each one,
while the web editor (which has no YAML) can still show the messages.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import timedelta
from typing import Protocol

from engine.spec.catalog import suggest
from engine.spec.conditions import AllOf, AnyOf, Condition, EventCondition, NotOf
from engine.spec.durations import format_duration
from engine.spec.errors import DataPath, step_label
from engine.spec.limits import MIN_LOOP_ROUND
from engine.spec.scoring import ScoringSpec
from engine.spec.sequence import (
    BranchArm,
    BranchElse,
    BranchStep,
    EmailStep,
    EndStep,
    GotoStep,
    SequenceSpec,
    SplitStep,
    WaitStep,
    WaitUntil,
)

Finding = tuple[DataPath, str]

# Step positions in the control-flow graph; END is "the sequence is over".
END = -1

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
    graph = _graph(spec)
    if not targets:  # with a jump to nowhere, "unreachable" would mostly be an echo of it
        findings += _check_reachable(spec, graph)
    findings += _check_loops(spec, graph)
    findings += _check_loop_rounds(spec, graph)
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


def _targets(step: object) -> Iterator[tuple[DataPath, str, str]]:
    """(path inside the step, target step id, what refers to it) for every jump."""
    if isinstance(step, GotoStep):
        yield ("goto",), step.goto, "goto"
    elif isinstance(step, BranchStep):
        for j, arm in enumerate(step.branch):
            if isinstance(arm, BranchArm):
                yield ("branch", j, "goto"), arm.goto, "goto"
            elif isinstance(arm, BranchElse):
                yield ("branch", j, "else"), arm.else_, "else"
    elif isinstance(step, SplitStep):
        for j, variant in enumerate(step.split):
            yield ("split", j, "goto"), variant.goto, f"variant {variant.variant!r}: goto"


def _unknown_step(name: str, ids: list[str]) -> str:
    hint = suggest(name, ids)
    return hint if hint else f"; the steps are: {', '.join(ids)}"


def _check_targets(spec: SequenceSpec, ids: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for i, step in enumerate(spec.steps):
        for path, target, word in _targets(step):
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


# --- control flow -----------------------------------------------------------------------


def _graph(spec: SequenceSpec) -> dict[int, list[int]]:
    """Step index -> the steps that may run next (END when the sequence stops there)."""
    ids = spec.step_ids()
    index = {sid: k for k, sid in reversed(list(enumerate(ids)))}  # first wins on duplicates
    last = len(spec.steps) - 1

    def following(i: int) -> int:
        return i + 1 if i < last else END

    graph: dict[int, list[int]] = {}
    for i, step in enumerate(spec.steps):
        nxt: list[int] = []
        if isinstance(step, EmailStep | WaitStep):
            nxt.append(following(i))
        elif isinstance(step, GotoStep):
            if step.goto in index:
                nxt.append(index[step.goto])
        elif isinstance(step, BranchStep):
            nxt += [index[a.goto] for a in step.arms if a.goto in index]
            otherwise = step.otherwise
            if otherwise is None:
                nxt.append(following(i))
            elif otherwise in index:
                nxt.append(index[otherwise])
        elif isinstance(step, SplitStep):
            nxt += [index[v.goto] for v in step.split if v.goto in index]
        elif isinstance(step, EndStep):
            pass
        graph[i] = list(dict.fromkeys(nxt))
    return graph


def _check_reachable(spec: SequenceSpec, graph: dict[int, list[int]]) -> list[Finding]:
    seen = {0}
    todo = [0]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt != END and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    findings: list[Finding] = []
    i = 0
    while i < len(spec.steps):
        if i in seen:
            i += 1
            continue
        run = i
        while run + 1 < len(spec.steps) and run + 1 not in seen:
            run += 1
        after = run - i
        also = ""
        if after:
            steps = "step" if after == 1 else f"{after} steps"
            also = f" (nor can the {steps} after it)"
        before = _describe_stop(spec, i - 1) if i > 0 else ""
        findings.append(
            (
                ("steps", i),
                f"{step_label(i, spec.steps[i])} can never run{also}: {before}no goto, branch "
                "or else leads to it; jump to it from somewhere, or delete it",
            )
        )
        i = run + 1
    return findings


def _describe_stop(spec: SequenceSpec, i: int) -> str:
    """Why the step before an unreachable one does not fall through into it."""
    step = spec.steps[i]
    label = step_label(i, step)
    if isinstance(step, EndStep):
        return f"{label} before it ends the sequence, and "
    if isinstance(step, GotoStep):
        return f"{label} before it always jumps away, and "
    if isinstance(step, BranchStep) and step.otherwise is not None:
        return f"{label} before it always jumps away (it has an 'else'), and "
    if isinstance(step, SplitStep):
        return f"{label} before it always jumps to one of its variants, and "
    return ""


def _check_loops(spec: SequenceSpec, graph: dict[int, list[int]]) -> list[Finding]:
    """A cycle with no wait step in it would send its emails back-to-back, forever.

    Removing the wait steps from the graph leaves exactly the cycles without a wait; each
    strongly connected component that still has a cycle is one such loop.
    """
    waits = {i for i, s in enumerate(spec.steps) if isinstance(s, WaitStep)}
    sub = {i: [n for n in nxt if n != END and n not in waits] for i, nxt in graph.items()}
    sub = {i: nxt for i, nxt in sub.items() if i not in waits}
    findings: list[Finding] = []
    for component in _strongly_connected(sub):
        members = sorted(component)
        if len(members) == 1 and members[0] not in sub[members[0]]:
            continue
        # Point at the jump that closes the loop: the last member jumping back into it.
        closer, path = _loop_closer(spec, members)
        names = " -> ".join(repr(spec.step_ids()[k]) for k in members)
        findings.append(
            (
                ("steps", closer, *path),
                f"{step_label(closer, spec.steps[closer])}: this jump makes a loop without a "
                f"wait ({names}): a prospect would get these emails back-to-back; "
                "add a wait step inside the loop",
            )
        )
    return findings


def _check_loop_rounds(spec: SequenceSpec, graph: dict[int, list[int]]) -> list[Finding]:
    """A loop that can send must wait at least ``MIN_LOOP_ROUND`` per round.

    ``email -> wait: 1m -> goto`` has a wait, but it would queue an email a minute, each
    one held by the frequency cap and piling up in the outbox. For each email inside a
    cycle, the shortest way back to it (Dijkstra, a node costing its least wait: a fixed
    ``wait`` its duration, a ``wait ... until`` nothing, since the event may come at once)
    is its round; one finding per loop, for its fastest email. Loops with no wait at all
    are :func:`_check_loops`' finding already.
    """
    least = {i: _least_wait(s) for i, s in enumerate(spec.steps)}
    waits = {i for i, s in enumerate(spec.steps) if isinstance(s, WaitStep)}
    waitless = {i: [n for n in nxt if n != END and n not in waits] for i, nxt in graph.items()}
    busy = {
        k
        for c in _strongly_connected({i: n for i, n in waitless.items() if i not in waits})
        for k in c
        if len(c) > 1 or k in waitless[k]
    }
    full = {i: [n for n in nxt if n != END] for i, nxt in graph.items()}
    findings: list[Finding] = []
    for component in _strongly_connected(full):
        emails = [
            k for k in sorted(component) if isinstance(spec.steps[k], EmailStep) and k not in busy
        ]
        rounds = [(r, k) for k in emails if (r := _round(full, least, k)) is not None]
        if not rounds:
            continue
        shortest, email = min(rounds)
        if shortest >= MIN_LOOP_ROUND:
            continue
        members = sorted(component)
        closer, path = _loop_closer(spec, members)
        names = " -> ".join(repr(spec.step_ids()[k]) for k in members)
        until = any(
            isinstance(spec.steps[k], WaitStep) and least[k] == timedelta(0) for k in members
        )
        note = " (a wait with 'until' counts as none: the event may come at once)" if until else ""
        findings.append(
            (
                ("steps", closer, *path),
                f"{step_label(closer, spec.steps[closer])}: this loop ({names}) can send "
                f"{spec.step_ids()[email]!r} again after {format_duration(shortest)}{note}; a "
                f"loop that sends email must wait at least {format_duration(MIN_LOOP_ROUND)} "
                "per round, or the frequency cap holds mail that piles up: lengthen its wait",
            )
        )
    return findings


def _least_wait(step: object) -> timedelta:
    if isinstance(step, WaitStep) and not isinstance(step.wait, WaitUntil):
        return step.wait  # type: ignore[return-value]
    return timedelta(0)


def _round(graph: dict[int, list[int]], cost: dict[int, timedelta], start: int) -> timedelta | None:
    """The least total wait of a path from ``start`` back to itself, or None if none."""
    best: dict[int, timedelta] = {}
    queue = [(cost[n], n) for n in graph[start]]
    heapq.heapify(queue)
    while queue:
        spent, node = heapq.heappop(queue)
        if node == start:
            return spent
        if node in best:
            continue
        best[node] = spent
        for nxt in graph[node]:
            if nxt not in best:
                heapq.heappush(queue, (spent + cost[nxt], nxt))
    return None


def _loop_closer(spec: SequenceSpec, members: list[int]) -> tuple[int, DataPath]:
    ids = spec.step_ids()
    inside = set(members)
    for i in reversed(members):
        for path, target, _ in _targets(spec.steps[i]):
            if target in ids and ids.index(target) in inside and ids.index(target) <= i:
                return i, path
    return members[-1], ()


def _strongly_connected(graph: dict[int, list[int]]) -> list[set[int]]:
    """Tarjan's algorithm, iteratively (a long sequence must not hit the recursion limit)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    out: list[set[int]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for k in range(pos, len(graph[node])):
                nxt = graph[node][k]
                if nxt not in index:
                    work.append((node, k + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component: set[int] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                out.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


# --- templates --------------------------------------------------------------------------


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
