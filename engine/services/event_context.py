"""What ingest needs to know about a prospect and the rules in force, in one statement.

Recording one event used to cost a statement for each thing it asked (the prospect, the
scoring version, the active sequences, the active enrollment's version); here they are
one ``SELECT ... FOR UPDATE OF prospects`` whose extra columns are scalar subqueries, and
the specs they name come from the per-process caches (keyed by id *and* checksum, so a
new version is seen by the very next event on every host).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    String,
    Text,
    any_,
    bindparam,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, make_transient_to_detached

from engine.core.enrollment import SequenceOption
from engine.core.relevance import types_in_play
from engine.services.loading import is_postgres, spec_by_checksum
from engine.services.scoring import scoring_by_checksum
from engine.spec.scoring import ScoringSpec
from engine.spec.sequence import SequenceSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Prospect,
    ScoringVersion,
    Sequence,
    SequenceVersion,
    execute_core,
)

_SEP = ","
_PART = ":"
_IN_PLAY: dict[tuple[tuple[str, ...], tuple[str, ...]], frozenset[str]] = {}
_IN_PLAY_LIMIT = 1024
_BY: dict[tuple[str, bool], Select[Any]] = {}  # load_context's statements, by key and lock
_MANY: dict[tuple[bool, bool], Select[Any]] = {}  # load_contexts', by dialect and lock
_Actives = tuple[tuple[int, SequenceSpec], ...]
_Rules = tuple[ScoringSpec | None, list[SequenceOption], frozenset[str], _Actives]
_RULES: dict[tuple[str | None, str | None, str | None], _Rules] = {}  # _context's, by keys


@dataclass(frozen=True)
class EventContext:
    """The locked prospect and the rules an event of theirs is judged by."""

    prospect: Prospect
    scoring: ScoringSpec | None
    options: list[SequenceOption]
    in_play: frozenset[str]  # event types any sequence in play tests (core.relevance)
    actives: _Actives = ()  # the versions (id, spec) of the prospect's active enrollments


def context_query(where: ColumnElement[bool], *, lock: bool, columns: bool = False) -> Select[Any]:
    """The prospect matching ``where``, with the latest scoring version, the active
    sequences' current versions and the prospect's active enrollment's version, each as
    one ``id:checksum`` string (``aggregate_strings`` is ``string_agg`` on PostgreSQL and
    ``group_concat`` on SQLite; checksums are hex, so the separators cannot occur).
    ``columns``: the prospect as its mapped columns (``_PROSPECT``), not an entity."""
    latest_scoring = (
        select(cast(ScoringVersion.id, String) + _PART + ScoringVersion.checksum)
        .order_by(ScoringVersion.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    options = (
        select(
            func.aggregate_strings(
                cast(Sequence.id, String)
                + _PART
                + cast(SequenceVersion.id, String)
                + _PART
                + SequenceVersion.checksum,
                _SEP,
            )
        )
        .select_from(Sequence)
        .join(SequenceVersion, SequenceVersion.id == Sequence.current_version_id)
        .where(Sequence.active.is_(True))
        .scalar_subquery()
    )
    active = (
        select(
            func.aggregate_strings(
                cast(SequenceVersion.id, String) + _PART + SequenceVersion.checksum, _SEP
            )
        )
        .select_from(Enrollment)
        .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
        .where(
            Enrollment.prospect_id == Prospect.id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .scalar_subquery()
    )
    prospect = [column for _, column in _PROSPECT] if columns else [Prospect]
    stmt = select(*prospect, latest_scoring, options, active).where(where)
    return stmt.with_for_update(of=Prospect.__table__) if lock else stmt


_PROSPECT = [(attr.key, attr.columns[0]) for attr in Prospect.__mapper__.column_attrs]


def load_context(session: Session, who: int | str, *, lock: bool) -> EventContext | None:
    """The prospect with id ``who`` (an int) or address ``who`` (a normalised email), with
    its rules (specs from the caches).

    The statement is built once per process (the prospect a parameter): building this
    one, with its three subqueries, and deriving its cache key cost more CPU per event
    than executing it. It runs as Core (``execute_core``), the entity built from its
    columns (``_entity``): the ORM's execution and loading of one row cost as much CPU
    again as the rest of the statement."""
    by = "id" if isinstance(who, int) else "email"
    stmt = _BY.get((by, lock))
    if stmt is None:
        column = Prospect.id if by == "id" else Prospect.email
        stmt = _BY[by, lock] = context_query(column == bindparam("who"), lock=lock, columns=True)
    row = execute_core(session, stmt, {"who": who}).first()
    if row is None:
        return None
    count = len(_PROSPECT)
    prospect = _entity(session, dict(zip((key for key, _ in _PROSPECT), row[:count], strict=True)))
    return _context(session, (prospect, *row[count:]))


def _entity(session: Session, values: dict[str, Any]) -> Prospect:
    """The session's ``Prospect`` for these loaded column values, as a query would give
    it: the one already in the session if any (its values kept, as a load keeps them),
    else a new persistent one holding them, with nothing to flush."""
    mapper = Prospect.__mapper__
    found = session.identity_map.get(mapper.identity_key_from_primary_key((values["id"],)))
    if found is not None:
        return found  # type: ignore[no-any-return]
    prospect: Prospect = mapper.class_manager.new_instance()
    prospect.__dict__.update(values)
    make_transient_to_detached(prospect)  # loaded values, no history
    session.add(prospect)  # persistent: nothing to insert
    return prospect


def load_contexts(
    session: Session, ids: Collection[int], emails: Collection[str], *, lock: bool
) -> list[EventContext]:
    """Every prospect with one of these ids or (normalised) addresses, with its rules,
    locked in id order (PostgreSQL): a batch takes all its locks at once, in the one order
    every batch uses. The statement is built once per dialect and lock, the ids and
    addresses its array parameters (one text for any batch, so it is prepared once)."""
    postgres = is_postgres(session)
    stmt = _MANY.get((postgres, lock))
    if stmt is None:
        stmt = _MANY[postgres, lock] = _many_statement(postgres, lock)
    params: dict[str, Any] = {"ids": sorted(ids), "emails": sorted(emails)}
    if postgres:  # as array literals: psycopg adapts a list element by element
        params["ids"] = _array_text(str(int(i)) for i in params["ids"])
        params["emails"] = _array_text(_quoted(e) for e in params["emails"])
    rows = session.execute(stmt, params)
    return [_context(session, row) for row in rows]


def _array_text(elements: Iterable[str]) -> str:
    """A PostgreSQL array literal of ready elements (numbers, or quoted strings)."""
    return "{" + ",".join(elements) + "}"


def _quoted(value: str) -> str:
    """``value`` as a quoted element of an array literal (any character allowed)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _many_statement(postgres: bool, lock: bool) -> Select[Any]:
    """``load_contexts``' statement: the ids and addresses as two array parameters on
    PostgreSQL (sent as text, cast by the server), expanding ``IN`` lists on SQLite."""
    if postgres:
        ids = cast(bindparam("ids", type_=Text), ARRAY(BigInteger))
        emails = cast(bindparam("emails", type_=Text), ARRAY(String))
        where = or_(Prospect.id == any_(ids), Prospect.email == any_(emails))
    else:
        where = or_(
            Prospect.id.in_(bindparam("ids", expanding=True)),
            Prospect.email.in_(bindparam("emails", expanding=True)),
        )
    return context_query(where, lock=lock).order_by(Prospect.id)


def _context(session: Session, row: Any) -> EventContext:
    prospect, scoring_key, option_keys, active_keys = row
    key = (scoring_key, option_keys, active_keys)
    rules = _RULES.get(key)
    if rules is None:  # the same strings name the same versions: derived once, not per row
        rules = _rules(session, scoring_key, option_keys, active_keys)
        if len(_RULES) >= _IN_PLAY_LIMIT:
            _RULES.clear()
        _RULES[key] = rules
    return EventContext(prospect, *rules)


def _rules(
    session: Session, scoring_key: str | None, option_keys: str | None, active_keys: str | None
) -> _Rules:
    """The scoring rules, the sequences in play and the event types they test, from the
    ``id:checksum`` strings of the context's statement (specs from the caches)."""
    scoring = None
    if scoring_key:
        scoring_id, checksum = scoring_key.split(_PART)
        scoring = scoring_by_checksum(session, int(scoring_id), checksum)
    option_parts = tuple(sorted(option_keys.split(_SEP))) if option_keys else ()
    active_parts = tuple(sorted(active_keys.split(_SEP))) if active_keys else ()
    options = []
    for part in option_parts:
        seq_id, version_id, checksum = part.split(_PART)
        spec = spec_by_checksum(session, int(version_id), checksum)
        options.append(SequenceOption(int(seq_id), int(version_id), spec))
    options.sort(key=lambda o: o.spec.key)
    actives = tuple(_active(session, part) for part in active_parts)
    in_play = _in_play(options, (option_parts, active_parts), actives)
    return scoring, options, in_play, actives


def _active(session: Session, part: str) -> tuple[int, SequenceSpec]:
    version_id, checksum = part.split(_PART)
    return int(version_id), spec_by_checksum(session, int(version_id), checksum)


def _in_play(
    options: list[SequenceOption], key: tuple[tuple[str, ...], tuple[str, ...]], actives: _Actives
) -> frozenset[str]:
    """:func:`engine.core.relevance.types_in_play`, once per combination of versions."""
    found = _IN_PLAY.get(key)
    if found is None:
        found = types_in_play(options, None).union(*(types_in_play([], s) for _, s in actives))
        if len(_IN_PLAY) >= _IN_PLAY_LIMIT:
            _IN_PLAY.clear()
        _IN_PLAY[key] = found
    return found
