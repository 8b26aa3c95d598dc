"""Catch the SQL a piece of code runs, and ask PostgreSQL how it would run each statement.

Used by the index test: the hot paths run for real against a seeded database while their
statements are recorded, then each one is ``EXPLAIN``-ed with its own parameters. Nothing
is written down twice: when a service's query changes, the test checks the new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

DML = ("select", "with", "update", "delete", "insert")


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any


@dataclass(frozen=True)
class FullScan:
    """A plan node that reads a whole table."""

    table: str
    statement: str
    plan: str

    def __str__(self) -> str:
        return f"Seq Scan on {self.table} in:\n  {self.statement}\nplan:\n{self.plan}"


@contextmanager
def recorded(engine: Engine) -> Iterator[list[Statement]]:
    """Within the block, every DML statement ``engine`` executes is appended to the list
    (with the first parameter set of an ``executemany``)."""
    statements: list[Statement] = []

    def before(
        conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if sql.lstrip().lower().startswith(DML):
            # insertmanyvalues batches rows into one statement with one dict of parameters
            if executemany and isinstance(parameters, list | tuple) and parameters:
                parameters = parameters[0]
            statements.append(Statement(sql, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def full_scans(database_url: str, statements: list[Statement], tables: set[str]) -> list[FullScan]:
    """Every ``Seq Scan`` of one of ``tables`` in the plans of ``statements``."""
    found: list[FullScan] = []
    seen: set[str] = set()
    for statement in statements:
        if statement.sql in seen:
            continue
        seen.add(statement.sql)
        plan = explain(database_url, statement)
        found.extend(
            FullScan(node["Relation Name"], " ".join(statement.sql.split()), _text(plan))
            for node in _nodes(plan[0]["Plan"])
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in tables
        )
    return found


def table_reads(database_url: str, statement: Statement, table: str) -> list[str]:
    """How the plan of ``statement`` reads ``table``: its scan nodes' types."""
    plan = explain(database_url, statement)
    return [n["Node Type"] for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == table]


def index_reads(database_url: str, statement: Statement, before: str | None = None) -> set[str]:
    """The indexes the plan of ``statement`` reads, planned after ``before`` (rolled back)."""
    plan = explain(database_url, statement, before)
    return {n["Index Name"] for n in _nodes(plan[0]["Plan"]) if "Index Name" in n}


def explain(database_url: str, statement: Statement, before: str | None = None) -> Any:
    """PostgreSQL's plan for ``statement`` (``EXPLAIN (FORMAT JSON)``, not executed), in a
    transaction that first runs ``before`` (e.g. a change the statistics have not seen),
    rolled back."""
    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        if before:
            cursor.execute(before)  # type: ignore[arg-type]
        cursor.execute(
            "EXPLAIN (FORMAT JSON) " + statement.sql,  # type: ignore[arg-type]
            statement.parameters or None,
        )
        (plan,) = cursor.fetchone()  # type: ignore[misc]
        conn.rollback()
    return plan


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _text(plan: Any, indent: str = "  ") -> str:
    def walk(node: dict[str, Any], depth: int) -> Iterator[str]:
        where = node.get("Index Name") or node.get("Relation Name") or ""
        condition = node.get("Index Cond") or node.get("Filter") or ""
        yield f"{indent * (depth + 1)}{node['Node Type']} {where} {condition}".rstrip()
        for child in node.get("Plans", []):
            yield from walk(child, depth + 1)

    return "\n".join(walk(plan[0]["Plan"], 0))
