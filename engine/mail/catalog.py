"""Email templates, checked before anything is sent: ``<key>.mjml`` plus its partials.

This is the real :class:`engine.spec.validate.TemplateCatalog`. It finds a template by key,
checks its Jinja (syntax, safety, and that only the documented names are used, because
rendering is strict about names and an unknown one would fail at send time, per
recipient), checks its MJML (known tags, nesting, with lines) and compiles it with its
``<mj-include>`` partials, so a broken template is caught when the sequence is validated
rather than when the first prospect is due an email.

Where the sources come from is the subclass's business: files under a folder
(:class:`FileTemplateCatalog`), or the versions stored in the database. The checks are the
same either way, so the validator, the editor and the renderer refuse the same templates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from jinja2 import meta

from engine.mail.catalog_checks import (
    MAX_EXPRESSION_NESTING,
    REQUIRED_MARKERS,
    compiled_problems,
    jinja_errors,
    sandbox,
    source_errors,
)
from engine.mail.mjml import MjmlError, compile_mjml
from engine.mail.mjml_source import structure_problem

__all__ = [
    "MAX_EXPRESSION_NESTING",
    "REQUIRED_MARKERS",
    "TEMPLATE_SUFFIX",
    "BaseTemplateCatalog",
    "FileTemplateCatalog",
    "SourcesCatalog",
    "TemplateError",
    "UnreadableError",
    "include_path_problem",
    "sandbox",
    "valid_key",
]

TEMPLATE_SUFFIX = ".mjml"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_/-]*$")
_POSITION = re.compile(r"at position (\d+)(?::\d+)?")
_INCLUDE_NAMED = re.compile(r'template from "([^"]+)"')


class TemplateError(Exception):
    """A template could not be compiled; ``errors`` says why, with file and line."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


class UnreadableError(Exception):
    """A template or partial could not be read: ``kind`` is ``missing``, ``outside`` (a
    symbolic link out of the folder) or ``unreadable`` (with ``detail``)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


_LEAVES = (
    "leads outside the templates folder (through a symbolic link): copy the file into the "
    "templates folder instead"
)


def valid_key(key: str) -> bool:
    """True for a template key that names a file inside the templates folder."""
    return bool(_KEY.match(key)) and ".." not in key and not key.endswith("/")


def include_path_problem(path: str) -> str | None:
    """Why an ``mj-include`` path may not be used, or None when it stays inside."""
    parts = PurePosixPath(path).parts
    if not path or path.startswith(("/", "\\")) or ".." in parts or "\\" in path:
        return (
            f"mj-include path {path!r} must stay inside the templates folder "
            "(write it relative to it, like '_partials/footer.mjml', without '..')"
        )
    return None


class BaseTemplateCatalog:
    """The checks and the compilation, over sources a subclass reads.

    Subclasses implement :meth:`read` (the text at a path relative to the templates
    folder, like ``price/value-recap.mjml``, or raise :class:`UnreadableError`) and
    :meth:`label` (how problems name that path).
    """

    def __init__(self) -> None:
        self._env = sandbox()

    # -- what a subclass provides ---------------------------------------------------------

    def read(self, path: str) -> str:
        raise NotImplementedError

    def label(self, path: str) -> str:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        """True when the template ``key`` exists."""
        raise NotImplementedError

    # -- checks ---------------------------------------------------------------------------

    def check_text(self, text: str) -> str | None:
        """Check a Jinja snippet (subject, preheader); return what is wrong, or None.

        The line is named only for multi-line text, where it helps find the mistake.
        """
        errors = jinja_errors(text, "")
        return errors[0] if errors else None

    def check_template(self, key: str) -> list[str]:
        """Every problem of the template: Jinja, includes, MJML, legal footer."""
        try:
            self.compile(key)
        except TemplateError as exc:
            return exc.errors
        return []

    def check_file(self, path: str) -> list[str]:
        """Problems of one file on its own (a partial before any email includes it):
        Jinja, MJML tags and links, each at its line."""
        try:
            text = self.read(path)
        except UnreadableError as exc:
            return [f"{self.label(path)}: cannot be read: {exc.detail or exc.kind}"]
        return source_errors(text, self.label(path))

    def variables(self, key: str) -> frozenset[str] | None:
        """The variables the template and its partials use; None when it is broken (its
        errors say why)."""
        try:
            _, sources = self.compile_with_sources(key)
        except TemplateError:
            return None
        names: set[str] = set()
        for text in sources.values():
            names |= meta.find_undeclared_variables(self._env.parse(text))
        return frozenset(names)

    def source(self, key: str) -> str:
        """The template's MJML source; raises :class:`TemplateError` if it cannot be read."""
        if not valid_key(key):
            raise TemplateError([f"bad template key {key!r}"])
        path = f"{key}{TEMPLATE_SUFFIX}"
        try:
            return self.read(path)
        except UnreadableError as exc:
            label = self.label(path)
            if exc.kind == "missing":
                raise TemplateError([f"{label} not found"]) from None
            if exc.kind == "outside":
                raise TemplateError([f"{label} {_LEAVES}"]) from None
            raise TemplateError([f"{label}: cannot read it: {exc.detail}"]) from None

    def compile(self, key: str) -> str:
        """The template compiled to HTML (Jinja markup intact), after checking all of it.

        Raises :class:`TemplateError` listing every problem, each prefixed with its file
        and line, so the renderer and the validator refuse exactly the same templates.
        """
        return self.compile_with_sources(key)[0]

    def compile_with_sources(self, key: str) -> tuple[str, dict[str, str]]:
        """:meth:`compile`, plus the exact text of every file it read: ``{key: source}`` for
        the template and ``{include path: text}`` for each partial.

        The renderer hashes these to name the template version it compiled; taking them
        from the compilation itself (not from a second read) means a file edited meanwhile
        can never be cached under the wrong hash.
        """
        source = self.source(key)
        name = self.label(f"{key}{TEMPLATE_SUFFIX}")
        errors = source_errors(source, name)
        include_errors: list[str] = []
        sources: dict[str, str] = {key: source}

        def load_include(path: str) -> str:
            text, problem = self._read_include(path, name)
            if problem is not None:
                include_errors.append(problem)
                return ""
            if path not in sources:
                sources[path] = text
                errors.extend(source_errors(text, self.label(path)))
            return text

        try:
            html = compile_mjml(source, include_loader=load_include)
        except MjmlError as exc:
            # Our own tag checks usually found the cause already, with its line.
            placed = any(": MJML: " in error for error in errors)
            compiler = [] if placed else [self._mjml_message(exc, key, sources)]
            raise TemplateError([*errors, *(include_errors or compiler)]) from None
        errors += include_errors
        if not errors:
            errors += self._compiled_errors(html, name)
        if errors:
            raise TemplateError(errors)
        return html, sources

    def _compiled_errors(self, html: str, name: str) -> list[str]:
        """What is wrong with the compiled HTML as a whole (its parts were fine)."""
        return list(compiled_problems(html, name))

    def _read_include(self, path: str, name: str) -> tuple[str, str | None]:
        problem = include_path_problem(path)
        if problem is not None:
            return "", f"{name}: {problem}"
        try:
            return self.read(path), None
        except UnreadableError as exc:
            if exc.kind == "missing":
                return "", f"{name}: mj-include {path!r} not found: create {self.label(path)}"
            if exc.kind == "outside":
                return "", f"{name}: mj-include {path!r} {_LEAVES}"
            return "", f"{name}: mj-include {path!r} cannot be read: {exc.detail}"

    def _mjml_message(self, exc: MjmlError, key: str, sources: dict[str, str]) -> str:
        """The compiler's complaint, placed at a line: its own position when it gives one,
        else the first tag our own nesting check finds open or out of order (in the
        partial the compiler names, if it names one)."""
        text = str(exc)
        root = f"{key}{TEMPLATE_SUFFIX}"
        match = _POSITION.search(text)
        if match:
            line = sources[key][: int(match[1])].count("\n") + 1
            return f"{self.label(root)}:{line}: MJML: {_POSITION.sub('', text).strip()}"
        named = _INCLUDE_NAMED.search(text)
        order = [named[1]] if named and named[1] in sources else []
        order += [key] + [path for path in sources if path != key]
        for path in dict.fromkeys(order):
            found = structure_problem(sources[path])
            if found is not None:
                label = self.label(root if path == key else path)
                return f"{label}:{found[0]}: MJML: {found[1]}"
        where = self.label(named[1]) if named and named[1] in sources else self.label(root)
        return f"{where}: MJML: {text}: check that every <mj-...> tag is closed and nested right"


class FileTemplateCatalog(BaseTemplateCatalog):
    """Templates under ``root``: key ``price/value-recap`` is ``root/price/value-recap.mjml``.

    ``<mj-include path="_partials/footer.mjml" />`` paths are relative to ``root`` too, and
    may not leave it, by ``..`` or by a symbolic link: a template is data a marketer edits,
    not a way to read server files.
    """

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def path_of(self, key: str) -> Path | None:
        """The file behind ``key``, or None when the key could point outside ``root``."""
        return self.root / f"{key}{TEMPLATE_SUFFIX}" if valid_key(key) else None

    def exists(self, key: str) -> bool:
        """True when the template file for ``key`` exists."""
        path = self.path_of(key)
        return path is not None and path.is_file()

    def label(self, path: str) -> str:
        return str(self.root / path)

    def read(self, path: str) -> str:
        file = self.root / path
        if not self._inside(file):
            raise UnreadableError("outside")
        try:
            return file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UnreadableError("missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UnreadableError("unreadable", str(exc)) from None

    def _inside(self, file: Path) -> bool:
        """True when ``file``, with every symbolic link resolved, is still under the root.

        The path was already checked for ``..`` and absolute parts; a link is the other way
        out. A file that does not exist is "inside" here: reading it reports it missing.
        """
        try:
            return file.resolve().is_relative_to(self.root.resolve())
        except (OSError, RuntimeError):  # a symlink loop
            return False


class SourcesCatalog(BaseTemplateCatalog):
    """Templates from a mapping of path to text: the versions stored in the database, or
    an editor's unsaved draft laid over them. Problems name ``templates/<path>``, as the
    files they are exported to and synced from."""

    def __init__(self, sources: Mapping[str, str], label_prefix: str = "templates/") -> None:
        super().__init__()
        self.sources = sources
        self.label_prefix = label_prefix

    def exists(self, key: str) -> bool:
        """True when the template ``key`` is among the sources."""
        return valid_key(key) and f"{key}{TEMPLATE_SUFFIX}" in self.sources

    def label(self, path: str) -> str:
        return f"{self.label_prefix}{path}"

    def read(self, path: str) -> str:
        try:
            return self.sources[path]
        except KeyError:
            raise UnreadableError("missing") from None
