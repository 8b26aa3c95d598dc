"""The names a template may use, and what validation says about any other name.

Rendering is strict about names (only values may be missing, see
:mod:`engine.mail.values`), so a typo like ``prospect.frist_name`` would fail every send.
This module finds such names when the template is validated, with the line and the fix:
a "did you mean" for typos, and a translation for merge tags pasted from other tools
(``{{FirstName}}``, ``*|FNAME|*``, ``{contactfield=firstname}``), which would otherwise
fail or, worse, go out to recipients as written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from jinja2 import meta, nodes

from engine.spec.catalog import PROSPECT_FIELDS, suggest

# Names a template may use; the renderer provides exactly these (see templates/README.md).
TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {"prospect", "sender", "owner", "unsubscribe_url", "subject", "preheader", "base_url"}
)
# The fields of each record variable. ``prospect.attributes.<anything>`` is free-form.
TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    "prospect": frozenset(PROSPECT_FIELDS) | {"attributes"},
    "sender": frozenset({"name", "email", "company", "company_url", "postal_address"}),
    "owner": frozenset({"name", "email"}),
}

# Other tools' words for prospect fields, normalised (lower case, letters and digits only).
_ALIASES: dict[str, str] = {
    "fname": "first_name",
    "first": "first_name",
    "givenname": "first_name",
    "lname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "familyname": "last_name",
    "companyname": "company",
    "organization": "company",
    "organisation": "company",
    "org": "company",
    "account": "company",
    "accountname": "company",
    "emailaddress": "email",
    "mail": "email",
    "jobtitle": "title",
    "position": "title",
    "unsub": "unsubscribe_url",
    "unsubscribe": "unsubscribe_url",
    "unsubscribelink": "unsubscribe_url",
    "unsubscribeurl": "unsubscribe_url",
    "listaddress": "sender.postal_address",
    "address": "sender.postal_address",
}
# How other tools name the recipient's record: ``{{ contact.firstname }}`` (HubSpot), ...
_OTHER_RECORDS = frozenset(
    {"contact", "lead", "recipient", "subscriber", "person", "customer", "user", "member"}
)
_NOT_JINJA_TAGS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Mailchimp merge tag", re.compile(r"\*\|\s*([A-Za-z0-9_:]+)\s*\|\*")),
    ("a Mautic token", re.compile(r"\{contactfield=([A-Za-z0-9_]+)\}")),
    ("a merge tag of another tool", re.compile(r"%%\s*([A-Za-z][A-Za-z0-9_.]*)\s*%%")),
)

Finding = tuple[int | None, str]


def _normal(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def _variable_for(word: str) -> str | None:
    """The Nurture variable another tool's name ``word`` stands for, if it is clear."""
    normal = _normal(word)
    for field in PROSPECT_FIELDS:
        if _normal(field) == normal:
            return f"prospect.{field}"
    alias = _ALIASES.get(normal)
    if alias is None:
        return None
    return alias if "." in alias or alias in TEMPLATE_VARIABLES else f"prospect.{alias}"


def name_findings(template: nodes.Template, extra_names: Iterable[str] = ()) -> list[Finding]:
    """``(line, message)`` for every name the template uses that rendering would not
    know: unknown variables, unknown fields of ``prospect``/``sender``/``owner``, and
    other tools' merge tags written in Jinja braces."""
    known = TEMPLATE_VARIABLES | set(extra_names)
    findings: list[Finding] = []
    unknown = sorted(meta.find_undeclared_variables(template) - known)
    lines = _first_lines(template)
    for name in unknown:
        findings.append((lines.get(name), _unknown_variable(name, template)))
    assigned = {n.name for n in template.find_all(nodes.Name) if n.ctx != "load"}
    for node in template.find_all((nodes.Getattr, nodes.Getitem)):
        record = node.node
        if not isinstance(record, nodes.Name) or record.name not in TEMPLATE_FIELDS:
            continue
        if record.name in assigned:  # the template reuses the name for its own value
            continue
        field = _field_name(node)
        if field is not None and field not in TEMPLATE_FIELDS[record.name]:
            findings.append((node.lineno, _unknown_field(record.name, field)))
    return sorted(findings, key=lambda finding: finding[0] or 0)


def merge_tag_findings(text: str) -> list[Finding]:
    """Merge tags of other tools that Jinja does not see and would send as written."""
    findings: list[Finding] = []
    for what, pattern in _NOT_JINJA_TAGS:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            variable = _variable_for(match[1].rsplit(".", 1)[-1])
            fix = (
                f"write {{{{ {variable} }}}}"
                if variable
                else "use the variables listed in templates/README.md"
            )
            findings.append(
                (line, f"{match[0]!r} is {what}; Nurture would send it as written: {fix}")
            )
    return sorted(findings, key=lambda finding: finding[0] or 0)


def _field_name(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None  # prospect[some_variable]: cannot be judged before it runs


def _first_lines(template: nodes.Template) -> dict[str, int]:
    lines: dict[str, int] = {}
    for node in template.find_all(nodes.Name):
        if node.ctx == "load":
            lines.setdefault(node.name, node.lineno)
    return lines


def _unknown_variable(name: str, template: nodes.Template) -> str:
    variable = _variable_for(name)
    if variable is None and name in _OTHER_RECORDS:
        fields = [
            _variable_for(node.attr)
            for node in template.find_all(nodes.Getattr)
            if isinstance(node.node, nodes.Name) and node.node.name == name
        ]
        variable = next((field for field in fields if field), "prospect")
    if variable is not None and variable != name:
        borrowed = name in _OTHER_RECORDS or variable.rsplit(".", 1)[-1] != name
        tool = f" {name!r} looks like another tool's merge tag" if borrowed else ""
        hint = f" (did you mean {variable!r}?{tool})"
    else:
        hint = suggest(name, TEMPLATE_VARIABLES)
    return (
        f"unknown variable {name!r}{hint}; templates can use "
        f"{', '.join(sorted(TEMPLATE_VARIABLES))}"
    )


def _unknown_field(record: str, field: str) -> str:
    fields = TEMPLATE_FIELDS[record]
    close = difflib.get_close_matches(field, list(fields), n=1, cutoff=0.6)
    variable = f"{record}.{close[0]}" if close else _variable_for(field)
    hint = ""
    if variable and variable.startswith(f"{record}."):
        hint = f" (did you mean {variable!r}?)"
    message = f"unknown field '{record}.{field}'{hint}; {record} has {', '.join(sorted(fields))}"
    if record == "prospect" and not hint:
        message += f"; a custom CRM field is 'prospect.attributes.{field}'"
    return message
