"""The checks that follow a sequence's control flow: which step may run after which, so a
step no path reaches, a loop with no way out, or a loop that would mail someone again
sooner than ``MIN_LOOP_ROUND`` is refused before it reaches a prospect.

Split from ``engine.spec.validate`` (which runs them with the other whole-sequence checks)
because they share one idea, the graph of step indexes, and nothing else there does.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import timedelta

from engine.spec.durations import format_duration
from engine.spec.errors import DataPath, step_label
from engine.spec.limits import MIN_LOOP_ROUND
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

__all__ = ["END", "Finding", "check_flow", "step_targets"]

Finding = tuple[DataPath, str]

# Step positions in the control-flow graph; END is "the sequence is over".
END = -1


def check_flow(spec: SequenceSpec, *, reachability: bool) -> list[Finding]:
    """Unreachable steps (when ``reachability``: a jump to nowhere would make most of them
    an echo of it), loops with no way out, and loops that come round too soon."""
    graph = _graph(spec)
    findings = _check_reachable(spec, graph) if reachability else []
    return findings + _check_loops(spec, graph) + _check_loop_rounds(spec, graph)


def step_targets(step: object) -> Iterator[tuple[DataPath, str, str]]:
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
        for path, target, _ in step_targets(spec.steps[i]):
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
