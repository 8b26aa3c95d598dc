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

import functools
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from jinja2 import TemplateSyntaxError, meta

from engine.mail.footer import footer_errors
from engine.mail.links import link_findings
from engine.mail.mjml import MjmlError, compile_mjml
from engine.mail.mjml_source import structure_problem, unknown_tags
from engine.mail.names import merge_tag_findings, name_findings
from engine.mail.sandbox import BoundedSandbox
from engine.mail.template_check import safety_findings

# Required by anti-spam law (CAN-SPAM, CASL, GDPR practice): a working opt-out and the
# sender's postal address in every marketing email.
REQUIRED_MARKERS: dict[str, str] = {
    "unsubscribe_url": "an unsubscribe link ({{ unsubscribe_url }})",
    "sender.postal_address": "the sender's postal address ({{ sender.postal_address }})",
}
TEMPLATE_SUFFIX = ".mjml"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_/-]*$")
_POSITION = re.compile(r"at position (\d+)(?::\d+)?")
_INCLUDE_NAMED = re.compile(r'template from "([^"]+)"')
_COMMENT_OPEN = "{#"


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


def sandbox() -> BoundedSandbox:
    """The Jinja environment templates are checked (and must be rendered) with."""
    return BoundedSandbox()


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
        errors = _jinja_errors(text, "")
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
        return _source_errors(text, self.label(path))

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
        errors = _source_errors(source, name)
        include_errors: list[str] = []
        sources: dict[str, str] = {key: source}

        def load_include(path: str) -> str:
            text, problem = self._read_include(path, name)
            if problem is not None:
                include_errors.append(problem)
                return ""
            if path not in sources:
                sources[path] = text
                errors.extend(_source_errors(text, self.label(path)))
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
        return list(_compiled_problems(html, name))

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


_CHECKER = sandbox()


@functools.lru_cache(maxsize=128)
def _file_errors(text: str, name: str) -> tuple[str, ...]:
    """Jinja problems and MJML tag problems of one file, in line order.

    Tags that nest wrongly are reported even when the compiler would accept them: it then
    guesses, and what the recipient gets is not what the marketer wrote. Cached: a partial
    is checked once, not once for every email that includes it.
    """
    jinja = _jinja_errors(text, name)
    tags = unknown_tags(text)
    if not tags:
        structure = structure_problem(text)
        tags = [structure] if structure is not None else []
    found = [f"{_at(name, text, line)}MJML: {message}" for line, message in tags]
    found += [f"{_at(name, text, line)}{message}" for line, message in link_findings(text)]
    return tuple(sorted(jinja + found, key=_line_of))


@functools.lru_cache(maxsize=256)
def _compiled_problems(html: str, name: str) -> tuple[str, ...]:
    """The compiled HTML's problems: pure in its text, and the costliest check (it renders
    the footer for every sample prospect), so remembered: the sequence editor checks the
    same stored templates at every keystroke."""
    # MJML must leave the Jinja intact, or rendering would fail for every recipient.
    errors = [f"after MJML compilation: {e}" for e in _jinja_errors(html, "", False)]
    for marker, what in REQUIRED_MARKERS.items():
        if marker not in html:
            errors.append(f"{name}: missing {what}: include _partials/footer.mjml in <mj-body>")
    if not errors:
        errors += footer_errors(html, name)
    return tuple(errors)


def _jinja_errors(text: str, name: str, names: bool = True) -> list[str]:
    """Jinja syntax errors, unsafe constructs and unknown names of ``text``, as readable
    lines.

    The safety check (see :mod:`engine.mail.template_check`) runs between parsing and compiling,
    so a refused filter is explained as refused rather than as missing.
    """
    too_deep = _nesting_problem(text)
    if too_deep is not None:
        return [f"{_at(name, text, too_deep)}{_TOO_DEEP}"]
    try:
        parsed = _CHECKER.parse(text)
        unsafe = safety_findings(parsed)
        if unsafe:
            return [f"{_at(name, text, line)}{message}" for line, message in unsafe]
        _CHECKER.compile(parsed)
    except TemplateSyntaxError as exc:
        return [f"{_at(name, text, exc.lineno)}{_syntax_message(exc, text)}"]
    except RecursionError:  # e.g. `not not not ...` hundreds deep: no bracket to count
        return [f"{_at(name, text, None)}{_TOO_DEEP}"]
    if not names:
        return []
    found = name_findings(parsed, _CHECKER.globals) + merge_tag_findings(text)
    return [f"{_at(name, text, line)}{message}" for line, message in found]


MAX_EXPRESSION_NESTING = 20
"""How deeply brackets may nest in one Jinja expression. Jinja's parser recurses about a
dozen frames per bracket, so 70 of them exhausted Python's stack; no email needs more
than a handful."""
_TOO_DEEP = (
    f"an expression nests more than {MAX_EXPRESSION_NESTING} brackets (or operators) "
    "deep: simplify it"
)
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


def _nesting_problem(text: str) -> int | None:
    """The line where brackets in Jinja markup nest past ``MAX_EXPRESSION_NESTING``, or
    None. Counted on the lexer's tokens (a flat loop), before the recursive parser runs;
    text outside ``{{ }}``/``{% %}`` is data, where brackets mean nothing."""
    depth = 0
    try:
        for line, kind, value in _CHECKER.lex(text):
            if kind != "operator":
                continue
            if value in _OPENERS:
                depth += 1
                if depth > MAX_EXPRESSION_NESTING:
                    return line
            elif value in _CLOSERS:
                depth = max(0, depth - 1)
    except TemplateSyntaxError:
        return None  # the parser reports it, with its own words
    return None


def _at(name: str, text: str, line: int | None) -> str:
    """``file:line: `` for a file; for a snippet, the line only when it has several."""
    if name:
        return f"{name}:{line}: " if line else f"{name}: "
    return f"line {line}: " if line and "\n" in text else ""


def _source_errors(text: str, name: str) -> list[str]:
    return list(_file_errors(text, name))


def _line_of(message: str) -> int:
    match = re.match(r"[^:]*:(\d+): ", message)
    return int(match[1]) if match else 0


def _syntax_message(exc: TemplateSyntaxError, text: str) -> str:
    message = (exc.message or str(exc)).rstrip(".")
    lines = text.splitlines()
    culprit = lines[exc.lineno - 1].strip() if 0 < exc.lineno <= len(lines) else ""
    if message == "Missing end of comment tag" and _COMMENT_OPEN in culprit:
        start = culprit.index(_COMMENT_OPEN)
        excerpt = culprit[max(0, start - 20) : start + 30]
        return (
            f"'{{#' in {excerpt!r} starts a Jinja comment that never ends: if it is CSS "
            "(like '{#outlook a'), put a space between '{' and '#', or wrap the CSS in "
            "{% raw %}...{% endraw %}"
        )
    if type(exc) is TemplateSyntaxError:  # not an unknown filter or test
        message += ": check that every {{ has its }} and every {% its %}"
    return message


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
