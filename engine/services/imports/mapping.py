"""Which CSV column goes where: a prospect field, a custom attribute, or nowhere.

A mapping is one target per column (by position, since two columns may share a name):
``"email"``, another prospect field, ``"attributes.<name>"``, or ``""`` to skip the column.
"""

from __future__ import annotations

import re
from typing import Any

from engine.exceptions import InvalidInputError
from engine.services.schemas import ProspectInput

__all__ = ["FIELDS", "SKIP", "check_mapping", "row_payload", "suggest_mapping"]

FIELDS: tuple[str, ...] = tuple(f for f in ProspectInput.model_fields if f != "attributes")
"""The prospect fields a column may fill, in the order the API documents them."""
SKIP = ""
ATTRIBUTE = re.compile(r"^attributes\.([a-z][a-z0-9_]{0,63})$")

# Names CRMs and spreadsheets use for the same fields (after lower-casing and turning
# spaces and dashes into underscores).
_SYNONYMS = {
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "company_name": "company",
    "organization": "company",
    "organisation": "company",
    "account": "company",
    "account_name": "company",
    "job_title": "title",
    "position": "title",
    "time_zone": "timezone",
    "tz": "timezone",
    "owner_email": "owner",
    "lead_status": "status",
    "closed_lost_reason": "lost_reason",
    "lost_date": "lost_at",
    "closed_at": "lost_at",
    "amount": "deal_size",
    "deal_value": "deal_size",
    "lead_source": "source",
}


def _normal(header: str) -> str:
    name = re.sub(r"[\s\-]+", "_", header.strip().lower())
    return name.removeprefix("attributes.")


def suggest_mapping(headers: list[str]) -> list[str]:
    """A first guess the marketer confirms or changes: known fields by name or synonym,
    every other named column as a custom attribute, nameless ones skipped."""
    taken: set[str] = set()
    targets: list[str] = []
    for header in headers:
        name = _normal(header)
        field = name if name in FIELDS else _SYNONYMS.get(name)
        if field is None and re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
            field = f"attributes.{name}"
        if field is None or field in taken:
            targets.append(SKIP)
            continue
        taken.add(field)
        targets.append(field)
    return targets


def check_mapping(headers: list[str], mapping: Any) -> list[str]:
    """The mapping, validated: one target per column, exactly one email column, no target
    twice; InvalidInputError (field ``mapping``) listing every problem otherwise."""
    if not isinstance(mapping, list) or not all(isinstance(t, str) for t in mapping):
        raise InvalidInputError("the mapping is one target per column", field="mapping")
    if len(mapping) != len(headers):
        raise InvalidInputError(
            f"the mapping has {len(mapping)} targets for {len(headers)} columns",
            field="mapping",
        )
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, target in enumerate(mapping):
        column = f"column {index + 1} ({headers[index][:40]!r})"
        if target == SKIP:
            continue
        if target not in FIELDS and not ATTRIBUTE.match(target):
            problems.append(
                f"{column}: {target[:80]!r} is not a prospect field or 'attributes.<name>' "
                "(lowercase letters, digits and '_')"
            )
        elif target in seen:
            problems.append(f"{column}: {target!r} is already filled by column {seen[target] + 1}")
        else:
            seen[target] = index
    if "email" not in seen:
        problems.append("no column is mapped to 'email', which identifies each prospect")
    if problems:
        raise InvalidInputError(
            "; ".join(problems), problems=[("mapping", problem) for problem in problems]
        )
    return list(mapping)


def row_payload(values: list[str], mapping: list[str]) -> dict[str, Any]:
    """The ``ProspectInput`` payload of one row: empty cells leave fields unchanged."""
    payload: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for target, raw in zip(mapping, values, strict=False):
        value = raw.strip()
        if target == SKIP or value == "":
            continue
        if target.startswith("attributes."):
            attributes[target.removeprefix("attributes.")] = value
        else:
            payload[target] = value
    if attributes:
        payload["attributes"] = attributes
    return payload
