"""The shipped sequences' email steps, composed through the real send path, for tests that
look at what recipients get (rendering, MIME, spam filters)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.mail.catalog import FileTemplateCatalog
from engine.mail.render import Renderer
from engine.mail.tokens import TokenSigner
from engine.services.compose import Composed, compose
from engine.spec import EmailStep, SequenceSpec
from engine.spec.loader import load_sequence

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SETTINGS = Settings(
    secret_key="test-secret",
    base_url="https://nurture.example.net",
    company_name="Flowline",
    company_url="https://flowline.example.com",
    postal_address="Flowline Ltd, 1 Harbour Street, Bristol BS1 4RN, UK",
    templates_dir=TEMPLATES,
)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

NAMES = {
    "named": {"first_name": "Zoë", "last_name": "O'Brien"},
    "unnamed": {"first_name": None, "last_name": None},
    "blank-names": {"first_name": "  ", "last_name": ""},
}
COMPANIES = {"company": {"company": "Acme & Sons"}, "no-company": {"company": None}}
OWNERS: dict[str, tuple[str | None, str | None]] = {
    "no-owner": (None, None),
    "owner-address-only": ("sam@flowline.example.com", None),
    "owner-user": ("sam@flowline.example.com", "Sam Carter"),
}


def _shipped_steps() -> list[tuple[SequenceSpec, EmailStep]]:
    catalog = FileTemplateCatalog(TEMPLATES)
    steps = []
    for path in sorted((ROOT / "sequences").glob("*.yaml")):
        if path.name == "scoring.yaml":
            continue
        spec = load_sequence(path, catalog)
        steps += [(spec, step) for step in spec.steps if isinstance(step, EmailStep)]
    return steps


STEPS = _shipped_steps()
SHIPPED_KEYS = sorted(
    str(p.relative_to(TEMPLATES).with_suffix(""))
    for p in TEMPLATES.rglob("*.mjml")
    if not p.relative_to(TEMPLATES).parts[0].startswith("_")
)


def prospect(names: str, company: str, owner: str) -> tuple[dict[str, Any], str | None]:
    owner_email, owner_name = OWNERS[owner]
    facts: dict[str, Any] = {
        "email": "zoe@acme.example",
        "title": None,
        "country": None,
        "timezone": None,
        "status": "closed_lost",
        "lost_reason": "price",
        "lost_at": None,
        "deal_size": None,
        "owner": owner_email,
        "source": None,
        "created_at": NOW,
        "status_changed_at": None,
        "attributes": {},
        **NAMES[names],
        **COMPANIES[company],
    }
    return facts, owner_name


def compose_step(
    renderer: Renderer,
    number: int,
    spec: SequenceSpec,
    step: EmailStep,
    facts: dict[str, Any],
    owner_name: str | None,
) -> Composed:
    """One shipped email for one prospect, exactly as a worker composes it."""
    return compose(
        message_id=number,
        template=step.email,
        subject_source=step.subject,
        prospect=facts,
        spec=spec,
        step_id=step.id or "",
        settings=SETTINGS,
        renderer=renderer,
        signer=TokenSigner(SETTINGS.secret_key),
        now=NOW,
        owner_name=owner_name,
    )
