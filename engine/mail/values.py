"""What recipient data looks like to a template: a missing value is empty, never "None".

CRM data is full of holes: no first name, no company, no owner, a custom field one prospect
has and the next one lacks. Jinja would print Python's ``None`` as "None" and treat a
mapping that merely *exists* as true, so ``{% if owner %}{{ owner.name }}`` greeted every
prospect with "a call with None". Here every missing value (``None``, an empty string, an
absent custom attribute) becomes :data:`Missing`, which

* prints as nothing, is false in ``{% if %}`` and ``or``, and iterates as empty;
* lets the template's fallback apply: ``x or "there"``, ``x|default("there")``;
* answers any attribute with itself, so ``prospect.attributes.a.b`` is empty too.

Names outside the documented ones stay errors (the sandbox is strict about them, and
validation reports them with a "did you mean"); only *values* may be missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined


class Missing(ChainableUndefined):
    """A value the recipient's data does not have (see the module doc)."""

    __slots__ = ()


def missing(name: str) -> Missing:
    """The empty stand-in for the value called ``name`` (kept for error messages)."""
    return Missing(name=name)


class Fields(dict[str, Any]):
    """A record with a fixed set of fields (prospect, sender, owner): an unknown field is
    an error, a known one without a value is :class:`Missing`. ``label`` names the record
    in that error."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


class Attributes(dict[str, Any]):
    """Free-form custom fields (``prospect.attributes``): a prospect may lack any of them,
    so an absent key is :class:`Missing` rather than an error."""

    def __missing__(self, key: str) -> Missing:
        return missing(str(key))


def is_missing(value: object) -> bool:
    """True for the values a recipient "does not have": None, blank text, :class:`Missing`."""
    if value is None or isinstance(value, Missing):
        return True
    return isinstance(value, str) and not value.strip()


def template_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` with every missing value turned into :class:`Missing`, records into
    :class:`Fields` and ``prospect.attributes`` into :class:`Attributes`.

    Applied by the renderer to whatever it is given, so no caller can bring "None" back.
    """
    return {name: _convert(name, value, attributes=False) for name, value in context.items()}


def _convert(name: str, value: Any, *, attributes: bool) -> Any:
    kind = type(value)
    if kind is str:  # the usual value, checked without is_missing's isinstance calls
        return value if value.strip() else missing(name)
    if is_missing(value):
        return missing(name)
    if kind is dict or isinstance(value, Mapping):  # dict first: the ABC check is slow
        record = Attributes() if attributes else Fields(name)
        for key, item in value.items():
            record[key] = _convert(str(key), item, attributes=key == "attributes" or attributes)
        return record
    if isinstance(value, list | tuple):
        return [_convert(name, item, attributes=attributes) for item in value]
    return value
