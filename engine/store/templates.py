"""Email templates and their immutable versions: MJML + Jinja as data in the database.

Every web and worker host reads the same versions from here, so a template saved in the
editor reaches every worker without a shared disk, and "which version did this prospect
get" has an answer: a message names the version it was rendered from.

A template is a file of the templates folder by its path (``price/value-recap.mjml``, or a
partial like ``_partials/footer.mjml``). An email template's version also keeps the exact
text of every partial it included (``includes``) and the checksum of the whole
(``render_checksum``, the renderer's compile-cache key): a version alone determines what
its emails look like, forever, whatever happens to the partials later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from engine.store.base import Base, BigId, utcnow
from engine.store.exceptions import ImmutableRowError


class EmailTemplate(Base):
    """A template or partial by its path; ``current_version`` is what new emails use."""

    __tablename__ = "email_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    path: Mapped[str] = mapped_column(String(300), unique=True)
    # use_alter: the two tables point at each other (as sequences and their versions do).
    current_version_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("email_template_versions.id", use_alter=True)
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    current_version: Mapped[EmailTemplateVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True, lazy="raise_on_sql"
    )

    def __repr__(self) -> str:
        return f"<EmailTemplate {self.id} {self.path!r}>"


class EmailTemplateVersion(Base):
    """One saved text of a template; never changed once written."""

    __tablename__ = "email_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("email_templates.id"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 hex of source
    # Email templates only: {partial path: text} as compiled with this version, and the
    # checksum of source + includes (what Message.template_checksum records).
    includes: Mapped[dict[str, Any] | None]
    render_checksum: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(320))
    # "sync" (from the templates folder) or "editor": a sync never silently replaces what
    # someone published in the editor.
    origin: Mapped[str] = mapped_column(String(16), default="sync")
    note: Mapped[str | None] = mapped_column(Text)

    template: Mapped[EmailTemplate] = relationship(foreign_keys=[template_id], lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<EmailTemplateVersion {self.id} template={self.template_id} v{self.version}>"


@event.listens_for(EmailTemplateVersion, "before_update")
def _refuse_version_update(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    """Messages name a version: changing it would change emails already rendered from it."""
    raise ImmutableRowError(
        f"email template version {target.id} (v{target.version}) is immutable; save a new one"
    )
