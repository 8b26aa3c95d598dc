"""Repair a sequence that failed validation just enough to check its flow.

A marketer should see the typo in a goto together with the bad duration two lines up, not
one after the other. So when pydantic refuses a sequence, each broken part is swapped for
a stand-in that keeps what the flow checks need (a step's kind, id and jump targets), the
repaired copy is validated, and the findings that would be about a stand-in's invented
content, or echoes of what the repair lost, are dropped.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from engine.spec.errors import STEP_KINDS, DataPath, step_label
from engine.spec.locate import _Located
from engine.spec.sequence import STEP_ID, SequenceSpec
from engine.spec.validate import TemplateCatalog, validate_sequence

__all__ = ["flow_findings"]

_PLACEHOLDER_ENROLL = {"when": {"field": "status", "exists": True}}
_FLOW_KEYS = ("goto", "branch", "split", "id")  # findings about these survive a step's repair


def flow_findings(
    data: dict[Any, Any], located: list[_Located], templates: TemplateCatalog | None
) -> list[tuple[DataPath, str]]:
    """Semantic findings for a sequence that failed validation, from a repaired copy.

    Each broken part is swapped for a stand-in that keeps what the flow checks need (a
    step's kind, id and jump targets); findings that would be about a stand-in's invented
    content are dropped. If the file is too broken to repair, there are no findings.
    """
    broken = _broken_parts(located)
    steps = data.get("steps")
    if broken is None or not isinstance(steps, list):
        return []
    bad_top, bad_steps = broken
    for i in bad_steps:
        step_id = steps[i].get("id") if isinstance(steps[i], dict) else None
        if step_id is not None and not (isinstance(step_id, str) and STEP_ID.match(step_id)):
            return []  # references to the unreadable id would all look broken
    repaired = {k: v for k, v in data.items() if k not in bad_top}
    for key, default in (("key", "placeholder"), ("name", "placeholder")):
        repaired.setdefault(key, default)
    repaired.setdefault("enroll", _PLACEHOLDER_ENROLL)
    repaired["steps"] = [
        _stand_in(step, i) if i in bad_steps else step for i, step in enumerate(steps)
    ]
    try:
        spec = SequenceSpec.model_validate(repaired)
    except ValidationError:
        return []
    return _without_echoes(
        validate_sequence(spec, templates), steps, repaired["steps"], spec, bad_steps
    )


def _broken_parts(located: list[_Located]) -> tuple[set[Any], set[int]] | None:
    """The top-level keys and the step indexes the errors are in; None when an error is
    about the whole file or the step list itself, which no stand-in can repair."""
    bad_top: set[Any] = set()
    bad_steps: set[int] = set()
    for item in located:
        path = item.path
        if not path:
            return None
        if path[0] != "steps":
            bad_top.add(path[0])
        elif len(path) >= 2 and isinstance(path[1], int):
            bad_steps.add(path[1])
        else:
            return None
    return bad_top, bad_steps


def _without_echoes(
    findings: list[tuple[DataPath, str]],
    steps: list[Any],
    stand_ins: list[Any],
    spec: SequenceSpec,
    bad_steps: set[int],
) -> list[tuple[DataPath, str]]:
    """The repaired copy's findings, less those the repair itself caused, with each
    stand-in's label put back as the author wrote the step."""
    # A split whose stand-in lost a jump (an unreadable goto, a second kind of step) would
    # make that jump's target look unreachable: such findings would be echoes.
    lost_jumps = any(
        isinstance(steps[i], dict)
        and "split" in steps[i]
        and _split_jumps(steps[i]) != _split_jumps(stand_ins[i])
        for i in bad_steps
    )
    # A stand-in's label may claim a kind the author did not write ("step 9 (wait)").
    relabel = {
        step_label(i, spec.steps[i]): step_label(i, steps[i])
        for i in bad_steps
        if step_label(i, spec.steps[i]) != step_label(i, steps[i])
    }
    kept = []
    for path, message in findings:
        invented_content = len(path) > 2 and path[0] == "steps" and path[1] in bad_steps
        if invented_content and path[2] not in _FLOW_KEYS:
            continue
        if lost_jumps and len(path) == 2 and "can never run" in message:
            continue
        for invented, written in relabel.items():
            message = message.replace(invented, written)
        kept.append((path, message))
    return kept


def _stand_in(raw: Any, index: int) -> dict[str, Any]:
    """A valid step of the same kind, id and jump targets as the broken ``raw`` step
    (at ``index``)."""
    if not isinstance(raw, dict):
        return {"wait": "1d"}
    step_id = raw.get("id")
    base: dict[str, Any] = (
        {"id": step_id} if isinstance(step_id, str) and STEP_ID.match(step_id) else {}
    )
    kinds = [k for k in STEP_KINDS if k in raw]
    if not kinds:  # a misspelt kind ('emial'): guess it, so 'since' references still fit
        kinds = [m for key in raw for m in difflib.get_close_matches(str(key), STEP_KINDS, 1)]
        if "subject" in raw:
            kinds = ["email"]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind == "email":
        return base | {"email": "placeholder", "subject": "placeholder"}
    if kind == "goto" and isinstance(raw.get("goto"), str):
        return base | {"goto": raw["goto"]}
    if kind == "end":
        return base | {"end": "completed"}
    if kind == "branch" and isinstance(raw.get("branch"), list) and raw["branch"]:
        arms: list[dict[str, Any]] = []
        for arm in raw["branch"]:
            if isinstance(arm, dict) and isinstance(arm.get("else"), str):
                arms.append({"else": arm["else"]})
            elif isinstance(arm, dict) and isinstance(arm.get("goto"), str):
                arms.append({"if": {"event": "email.sent"}, "goto": arm["goto"]})
            else:
                return base | {"wait": "1d"}
        if all("goto" in arm for arm in arms[:-1]):
            return base | {"branch": arms}
    if kind == "split" and isinstance(raw.get("split"), list):
        # A split needs an id: a missing one stands in as the automatic name, which the
        # relabelling turns back into "step 4 (split)".
        return {"id": f"step-{index + 1}"} | base | _split_stand_in(raw["split"])
    return base | {"wait": "1d"}


def _split_stand_in(variants: list[Any]) -> dict[str, Any]:
    """A split keeps its jumps, so its gotos are still checked: each readable variant keeps
    its name (a stand-in name when it has none, or a taken one) and goes by weight 1; a
    split with fewer than two readable jumps keeps the one it has, as a goto."""
    kept: list[dict[str, Any]] = []
    for j, variant in enumerate(variants):
        if not isinstance(variant, dict) or not isinstance(variant.get("goto"), str):
            continue
        name = variant.get("variant")
        taken = {v["variant"] for v in kept}
        if not (isinstance(name, str) and STEP_ID.match(name)) or name in taken:
            name = f"variant-{j + 1}"
        kept.append({"variant": name, "weight": 1, "goto": variant["goto"]})
    if len(kept) >= 2:
        return {"split": kept}
    if kept:
        return {"goto": kept[0]["goto"]}
    return {"wait": "1d"}


def _split_jumps(step: Any) -> list[Any]:
    """Where a raw split (or its stand-in: a split or a goto) jumps: the variants' gotos,
    None for one that cannot be read; nothing for any other step."""
    if not isinstance(step, dict):
        return []
    if isinstance(step.get("split"), list):
        return [v.get("goto") if isinstance(v, dict) else None for v in step["split"]]
    return [step["goto"]] if isinstance(step.get("goto"), str) else []
