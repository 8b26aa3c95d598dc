"""engine.core and engine.spec are pure: no I/O libraries, no project shells, no clock.

Checked twice: by importing every module and looking at what it pulled in, and by reading
the source, so an import hidden in a function body or behind ``TYPE_CHECKING`` is caught too.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine.core
import engine.spec

PURE_PACKAGES = (engine.core, engine.spec)

FORBIDDEN = (
    "sqlalchemy",
    "alembic",
    "redis",
    "rq",
    "flask",
    "werkzeug",
    "psycopg",
    "psycopg2",
    "smtplib",
    "socket",
    "ssl",
    "requests",
    "httpx",
    "urllib.request",
    "http",
    "subprocess",
    "engine.store",
    "engine.services",
    "engine.mail",
    "webapp",
    "workers",
)

# Reading the clock in the core is what would make simulation and retries lie.
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "localtime"),
    ("time", "gmtime"),
}


def _forbidden(name: str) -> str | None:
    for bad in FORBIDDEN:
        if name == bad or name.startswith(bad + "."):
            return bad
    return None


def _modules() -> list[str]:
    names = []
    for package in PURE_PACKAGES:
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


def _source(module_name: str) -> Path:
    spec = importlib.util.find_spec(module_name)
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin)


MODULES = _modules()


def test_the_pure_packages_are_found() -> None:
    assert "engine.core.stepping" in MODULES
    assert "engine.core.windows" in MODULES
    assert "engine.spec.sequence" in MODULES
    assert "engine.spec.conditions" in MODULES


def _imports(tree: ast.AST, module_name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module an ``import`` statement names (relative imports resolved)."""
    package = module_name if is_package else module_name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from engine import store` names engine.store just as well.
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_no_forbidden_import_statements(module_name: str) -> None:
    path = _source(module_name)
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        f"{path.name}:{line}: imports {name}"
        for line, name in _imports(tree, module_name, path.name == "__init__.py")
        if _forbidden(name)
    ]
    assert bad == []


def _clock_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``datetime.now()``, ``datetime.datetime.utcnow``, ``time.time()``... called or passed
    along (``default_factory=datetime.now`` reads the clock just as well), and clock
    functions imported bare (``from time import monotonic``)."""
    found = []
    time_clocks = {attr for mod, attr in CLOCK_CALLS if mod == "time"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = (
                owner.id
                if isinstance(owner, ast.Name)
                else owner.attr
                if isinstance(owner, ast.Attribute)
                else None
            )
            if (owner_name, node.attr) in CLOCK_CALLS:
                found.append((node.lineno, f"{owner_name}.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [
                (node.lineno, f"from time import {alias.name}")
                for alias in node.names
                if alias.name in time_clocks
            ]
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_no_clock_reads(module_name: str) -> None:
    path = _source(module_name)
    tree = ast.parse(path.read_text(), filename=str(path))
    assert [f"{path.name}:{line}: {what}" for line, what in _clock_reads(tree)] == []


def test_importing_the_pure_packages_loads_nothing_forbidden() -> None:
    """Import every pure module in a fresh interpreter and see what came along with them.

    pydantic (allowed) loads its plugins through importlib.metadata, whose stdlib
    dependencies open ``socket``; so the baseline is an interpreter that already has
    pydantic and a model class, and the pure modules must add nothing forbidden to it.
    """
    script = (
        "import importlib, json, sys\n"
        "import pydantic\n"
        "class Baseline(pydantic.BaseModel):\n"
        "    x: int = 0\n"
        "before = set(sys.modules)\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(engine.core.__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert set(MODULES) <= set(loaded)
    assert sorted({bad for name in loaded if (bad := _forbidden(name))}) == []


def test_the_checks_catch_what_they_claim_to() -> None:
    """The scanners themselves work: a module doing everything wrong is flagged."""
    bad_source = (
        "import socket\n"
        "from http import client\n"
        "from engine import store\n"
        "from ..services import tick\n"
        "import urllib.request as r\n"
        "def f():\n"
        "    import sqlalchemy.orm\n"
        "    return datetime.now(), datetime.datetime.utcnow(), time.time()\n"
    )
    tree = ast.parse(bad_source)
    names = {n for _, n in _imports(tree, "engine.core.fake") if _forbidden(n)}
    assert {"socket", "http", "engine.store", "engine.services", "urllib.request"} <= {
        _forbidden(n) for n in names
    }
    assert "sqlalchemy.orm" in names
    assert [what for _, what in _clock_reads(tree)] == [
        "datetime.now",
        "datetime.utcnow",
        "time.time",
    ]
    tree = ast.parse("from time import monotonic\nx = Field(default_factory=datetime.now)\n")
    assert sorted(what for _, what in _clock_reads(tree)) == [
        "datetime.now",
        "from time import monotonic",
    ]
