"""Imports point down (DESIGN.md): webapp/workers -> runtime -> services -> core/store/mail.

The composition root (``engine.runtime``) is the one place that knows the adapters; services
receive them through ``engine.services.ports``; the web app and the workers share the root
and never import each other (only the command line, the top shell, composes both).
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

import engine
import webapp
import workers
from tests.unit.test_purity import _imports

# (importer prefix, forbidden prefixes, allowed exceptions among importers)
RULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("engine", ("webapp", "workers"), ()),
    # Services get adapters handed to them; they never build or import one.
    (
        "engine.services",
        (
            "engine.adapters",
            "engine.runtime",
            "redis",
            "rq",
            "urllib.request",
            "http.client",
            "smtplib",
        ),
        (),
    ),
    ("engine.store", ("engine.services", "engine.runtime", "engine.adapters"), ()),
    ("engine.mail", ("engine.services", "engine.runtime", "engine.adapters"), ()),
    ("engine.inbound", ("engine.services", "engine.runtime", "engine.adapters"), ()),
    ("engine.adapters", ("engine.services", "engine.store", "engine.runtime"), ()),
    ("webapp", ("workers",), ("webapp.cli",)),
    ("workers", ("webapp",), ()),
]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in (engine, webapp, workers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" in info.name:
                continue
            spec = info.module_finder.find_spec(info.name, None)  # type: ignore[call-arg]
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                found.append((info.name, Path(spec.origin)))
    return sorted(found)


MODULES = _modules()


def _violations(name: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = []
    for line, target in _imports(tree, name, path.name == "__init__.py"):
        for importer, forbidden, allowed in RULES:
            if not (name == importer or name.startswith(importer + ".")):
                continue
            if any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            for prefix in forbidden:
                if target == prefix or target.startswith(prefix + "."):
                    bad.append(f"{path.name}:{line}: {name} imports {target}")
    return bad


def test_every_shell_module_is_checked() -> None:
    names = {name for name, _ in MODULES}
    assert {"engine.runtime", "engine.services.alerts", "webapp.extensions", "workers.jobs"} <= (
        names
    )


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_imports_point_down(name: str, path: Path) -> None:
    assert _violations(name, path) == []


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "extensions.py"
    bad.write_text("from workers.runtime import Runtime\n")
    assert _violations("webapp.extensions", bad) != []
    service = tmp_path / "alerts.py"
    service.write_text("def post():\n    import urllib.request\n")
    assert _violations("engine.services.alerts", service) != []
