"""The store: SQLAlchemy models split by aggregate, the unit of work and migrations.

Relationships are declared ``lazy="raise_on_sql"``: reading one that is not loaded yet (and
not already in the session) raises instead of quietly running a query per row; load what
a service needs with ``selectinload``/``joinedload`` or query it explicitly.
"""

from engine.store.audit import AuditEntry
from engine.store.base import (
    Base,
    EmailAddress,
    StringEnum,
    UTCDateTime,
    normalize_email,
    utcnow,
)
from engine.store.database import make_engine, make_session_factory, normalize_url
from engine.store.enrollments import Enrollment
from engine.store.enums import (
    EnrollmentStatus,
    HandoffStatus,
    ImportStatus,
    InboundKind,
    InboundStatus,
    IncidentKind,
    MessageStatus,
    SequenceStatus,
    SuppressionReason,
    UserRole,
    VersionOrigin,
)
from engine.store.events import Event
from engine.store.exceptions import (
    ImmutableRowError,
    MigrationError,
    StoreError,
    UnitOfWorkError,
)
from engine.store.handoffs import Handoff, HandoffRead
from engine.store.imports import Import, ImportProblem
from engine.store.inbound import InboundMessage
from engine.store.incidents import MessageIncident
from engine.store.messages import Message
from engine.store.migrate import (
    check_models_match,
    current_revision,
    downgrade,
    head_revision,
    revision_on,
    schema_state,
    upgrade,
)
from engine.store.prospects import Prospect
from engine.store.scoring import ScoreEntry
from engine.store.scoring_versions import ScoringVersion
from engine.store.sequences import Sequence, SequenceVersion
from engine.store.suppressions import Suppression
from engine.store.templates import EmailTemplate, EmailTemplateVersion
from engine.store.tracking_hits import TrackingHit
from engine.store.uow import UnitOfWork, end_read, execute_core
from engine.store.users import ApiToken, User

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "EmailAddress",
    "EmailTemplate",
    "EmailTemplateVersion",
    "Enrollment",
    "EnrollmentStatus",
    "Event",
    "Handoff",
    "HandoffRead",
    "HandoffStatus",
    "ImmutableRowError",
    "Import",
    "ImportProblem",
    "ImportStatus",
    "InboundKind",
    "InboundMessage",
    "InboundStatus",
    "IncidentKind",
    "Message",
    "MessageIncident",
    "MessageStatus",
    "MigrationError",
    "Prospect",
    "ScoreEntry",
    "ScoringVersion",
    "Sequence",
    "SequenceStatus",
    "SequenceVersion",
    "StoreError",
    "StringEnum",
    "Suppression",
    "SuppressionReason",
    "TrackingHit",
    "UTCDateTime",
    "UnitOfWork",
    "UnitOfWorkError",
    "User",
    "UserRole",
    "VersionOrigin",
    "check_models_match",
    "current_revision",
    "downgrade",
    "end_read",
    "execute_core",
    "head_revision",
    "make_engine",
    "make_session_factory",
    "normalize_email",
    "normalize_url",
    "revision_on",
    "schema_state",
    "upgrade",
    "utcnow",
]
