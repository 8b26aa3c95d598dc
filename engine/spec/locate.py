"""Where a pydantic validation error lands in the YAML data.

Pydantic's error locations mix real keys with union tags and union member labels; only
the field types can tell which is which. Walking the types and the data together turns a
location into the YAML path the line numbers are keyed by.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag

from engine.spec.errors import DataPath, SpecValueError

_MISSING = object()


@dataclass
class _Located:
    """Where a pydantic error lands in the YAML data, and what it says there."""

    error: Mapping[str, Any]
    path: DataPath
    model: type[BaseModel] | None  # the model owning the last key of ``path``
    union: DataPath | None = None  # loc prefix of the first non-discriminated union
    label: str | None = None  # the union member the error came from
    deeper: bool = False  # the error is inside a union member, not about the member itself


def _unwrap(tp: Any, metadata: Iterable[Any] = ()) -> tuple[str, Any]:
    """Reduce a field type to how pydantic's error locations walk through it."""
    meta = list(metadata)
    while get_origin(tp) is Annotated:
        tp, *more = get_args(tp)
        meta += more
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if any(isinstance(m, Discriminator) for m in meta):
            tags: dict[str, Any] = {}
            for member in members:
                for m in get_args(member)[1:] if get_origin(member) is Annotated else ():
                    if isinstance(m, Tag):
                        tags[m.tag] = member
            return "tagged", tags
        if len(members) == 1:
            return _unwrap(members[0])
        return "union", members
    if origin in (list, tuple):
        return "list", get_args(tp)[0] if get_args(tp) else Any
    if origin is dict:
        return "dict", get_args(tp)[1] if get_args(tp) else Any
    if origin is Literal:
        return "leaf", tp
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "model", tp
    return "leaf", tp


def _model_field(model: type[BaseModel], key: Any) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name, info
    return None


def _has(value: Any, key: Any) -> bool:
    if isinstance(value, dict):
        return key in value
    return isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)


def _locate(root: type[BaseModel], data: Any, error: Mapping[str, Any]) -> _Located:
    """Follow ``error['loc']`` through the types and the data at once.

    Pydantic's loc mixes real keys with union tags ('email', 'if', 'field', ...) and union
    member labels ('WaitUntil', 'str'); only the types can tell which is which, because a
    tag is often also a key (``steps.0.email.email`` is tag 'email', then key 'email').
    """
    loc = error["loc"]
    tp: Any = root
    metadata: Iterable[Any] = ()
    value: Any = data
    path: DataPath = ()
    located = _Located(error, (), None)
    for i, el in enumerate(loc):
        kind, info = _unwrap(tp, metadata)
        metadata = ()
        if kind == "tagged":
            tp = info.get(el, Any)
            continue
        if kind == "union":
            tp = _union_member(located, info, loc, i)
            continue
        owner = None
        if kind == "model":
            owner = info
            found = _model_field(info, el)
            tp, metadata = (found[1].annotation, found[1].metadata) if found else (Any, ())
        elif kind in ("list", "dict"):
            tp = info
        else:
            tp = Any
        value, path = _follow(value, path, loc[i:], kind)
        located.model = owner
    located.path = path
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, SpecValueError) and ctx_error.at:
        located.path = (*path, *ctx_error.at)
    return located


def _union_member(located: _Located, members: list[Any], loc: Sequence[Any], i: int) -> Any:
    """The member of a plain union that ``loc[i]`` labels; the first union on the way is
    noted on ``located``, so the errors of its members can be weighed together."""
    if located.union is None:
        located.union, located.label = tuple(loc[:i]), str(loc[i])
        located.deeper = i < len(loc) - 1
    return next(
        (
            m
            for m in members
            if isinstance(m, type) and issubclass(m, BaseModel) and m.__name__ == loc[i]
        ),
        Any,
    )


def _follow(value: Any, path: DataPath, rest: Sequence[Any], kind: str) -> tuple[Any, DataPath]:
    """One key deeper into the data (``rest[0]``), or past its end when it is not there."""
    el = rest[0]
    if _has(value, el):
        return value[el], (*path, el)
    if kind == "model" and isinstance(value, dict) and len(rest) > 1 and rest[1] in value:
        # A field a before-validator filled in from inline keys (an event's filters
        # written next to it rather than under 'where'): stay on the written mapping.
        return value, path
    return _MISSING, (*path, el)
