"""Email templates on disk: ``templates/<key>.mjml`` files, checked before anything is sent.

This is the real :class:`engine.spec.validate.TemplateCatalog`. It finds a template by key,
checks Jinja (syntax, and that only the documented variables are used, because rendering
uses ``StrictUndefined`` and an unknown name would fail at send time, per recipient) and
compiles the MJML with its ``<mj-include>`` partials, so a broken template is caught when
the sequence is validated rather than when the first prospect is due an email.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from jinja2 import TemplateSyntaxError, meta

from engine.mail.mjml import MjmlError, compile_mjml
from engine.mail.sandbox import BoundedSandbox, safety_findings
from engine.spec.catalog import suggest

# Names a template may use; the renderer provides exactly these (see templates/README.md).
TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {"prospect", "sender", "owner", "unsubscribe_url", "subject", "preheader", "base_url"}
)
PROSPECT_ATTRIBUTES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "company",
    "title",
    "lost_reason",
    "owner",
    "attributes",
)
# Required by anti-spam law (CAN-SPAM, CASL, GDPR practice): a working opt-out and the
# sender's postal address in every marketing email.
REQUIRED_MARKERS: dict[str, str] = {
    "unsubscribe_url": "an unsubscribe link ({{ unsubscribe_url }})",
    "sender.postal_address": "the sender's postal address ({{ sender.postal_address }})",
}
TEMPLATE_SUFFIX = ".mjml"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_/-]*$")
_POSITION = re.compile(r"at position (\d+)(?::\d+)?")
_LEAVES_ROOT = (
    "leads outside the templates folder (through a symbolic link): copy the file into the "
    "templates folder instead"
)


class TemplateError(Exception):
    """A template could not be compiled; ``errors`` says why, with file and line."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def sandbox() -> BoundedSandbox:
    """The Jinja environment templates are checked (and must be rendered) with."""
    return BoundedSandbox()


class FileTemplateCatalog:
    """Templates under ``root``: key ``price/value-recap`` is ``root/price/value-recap.mjml``.

    ``<mj-include path="_partials/footer.mjml" />`` paths are relative to ``root`` too, and
    may not leave it: a template is data a marketer edits, not a way to read server files.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._env = sandbox()

    def path_of(self, key: str) -> Path | None:
        """The file behind ``key``, or None when the key could point outside ``root``."""
        if not _KEY.match(key) or ".." in key or key.endswith("/"):
            return None
        return self.root / f"{key}{TEMPLATE_SUFFIX}"

    def exists(self, key: str) -> bool:
        """True when the template file for ``key`` exists."""
        path = self.path_of(key)
        return path is not None and path.is_file()

    def check_text(self, text: str) -> str | None:
        """Check a Jinja snippet (subject, preheader); return what is wrong, or None.

        The line is named only for multi-line text, where it helps find the mistake.
        """
        errors = self._jinja_errors(text, "")
        return errors[0] if errors else None

    def check_template(self, key: str) -> list[str]:
        """Every problem of the template file: Jinja, includes, MJML, legal footer."""
        try:
            self.compile(key)
        except TemplateError as exc:
            return exc.errors
        return []

    def source(self, key: str) -> str:
        """The template's MJML source; raises :class:`TemplateError` if it cannot be read."""
        path = self.path_of(key)
        if path is None:
            raise TemplateError([f"bad template key {key!r}"])
        if not self._inside(path):
            raise TemplateError([f"{path} {_LEAVES_ROOT}"])
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError([f"{path} not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError([f"{path}: cannot read it: {exc}"]) from None

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
        name = str(self.path_of(key))
        errors = self._jinja_errors(source, name)
        include_errors: list[str] = []
        sources: dict[str, str] = {key: source}

        def load_include(path: str) -> str:
            text, problem = self._read_include(path, name)
            if problem is not None:
                include_errors.append(problem)
                return ""
            if path not in sources:
                sources[path] = text
                errors.extend(self._jinja_errors(text, str(self.root / path)))
            return text

        try:
            html = compile_mjml(source, include_loader=load_include)
        except MjmlError as exc:
            raise TemplateError(
                [*errors, *(include_errors or [self._mjml_message(exc, source, name)])]
            ) from None
        errors += include_errors
        if not errors:
            # MJML must leave the Jinja intact, or rendering would fail for every recipient.
            errors += [
                f"after MJML compilation: {e}" for e in self._jinja_errors(html, "", names=False)
            ]
            for marker, what in REQUIRED_MARKERS.items():
                if marker not in html:
                    errors.append(f"{name}: no {what}: include _partials/footer.mjml in <mj-body>")
        if errors:
            raise TemplateError(errors)
        return html, sources

    def _read_include(self, path: str, name: str) -> tuple[str, str | None]:
        parts = PurePosixPath(path).parts
        if not path or path.startswith(("/", "\\")) or ".." in parts or "\\" in path:
            return "", (
                f"{name}: mj-include path {path!r} must stay inside the templates folder "
                "(write it relative to it, like '_partials/footer.mjml', without '..')"
            )
        file = self.root / path
        if not self._inside(file):
            return "", f"{name}: mj-include {path!r} {_LEAVES_ROOT}"
        try:
            return file.read_text(encoding="utf-8"), None
        except FileNotFoundError:
            return "", f"{name}: mj-include {path!r} not found: create {file}"
        except (OSError, UnicodeDecodeError) as exc:
            return "", f"{name}: mj-include {path!r} cannot be read: {exc}"

    def _inside(self, file: Path) -> bool:
        """True when ``file``, with every symbolic link resolved, is still under the root.

        The path was already checked for ``..`` and absolute parts; a link is the other way
        out, and a template is data a marketer edits, not a way to read server files.
        A file that does not exist is "inside" here: reading it reports it missing.
        """
        try:
            return file.resolve().is_relative_to(self.root.resolve())
        except (OSError, RuntimeError):  # a symlink loop
            return False

    def _jinja_errors(self, text: str, name: str, names: bool = True) -> list[str]:
        """Jinja syntax errors, unsafe constructs and unknown variables of ``text``, as
        readable lines.

        The safety check (see :mod:`engine.mail.sandbox`) runs between parsing and
        compiling, so a refused filter is explained as refused rather than as missing.
        """
        try:
            parsed = self._env.parse(text)
            unsafe = safety_findings(parsed)
            if unsafe:
                return [f"{self._at(name, text, line)}{message}" for line, message in unsafe]
            self._env.compile(parsed)
        except TemplateSyntaxError as exc:
            message = (exc.message or str(exc)).rstrip(".")
            if type(exc) is TemplateSyntaxError:  # not an unknown filter or test
                message += ": check that every {{ has its }} and every {% its %}"
            return [f"{self._at(name, text, exc.lineno)}{message}"]
        if not names:
            return []
        used = meta.find_undeclared_variables(parsed)
        unknown = sorted(used - TEMPLATE_VARIABLES - set(self._env.globals))
        out = []
        for var in unknown:
            if var in PROSPECT_ATTRIBUTES:
                hint = f" (did you mean 'prospect.{var}'?)"
            else:
                hint = suggest(var, TEMPLATE_VARIABLES)
            out.append(
                f"{name + ': ' if name else ''}unknown variable {var!r}{hint}; templates can "
                f"use {', '.join(sorted(TEMPLATE_VARIABLES))}"
            )
        return out

    @staticmethod
    def _at(name: str, text: str, line: int) -> str:
        """``file:line: `` for a file; for a snippet, the line only when it has several."""
        if name:
            return f"{name}:{line}: "
        return f"line {line}: " if "\n" in text else ""

    @staticmethod
    def _mjml_message(exc: MjmlError, source: str, name: str) -> str:
        text = str(exc)
        match = _POSITION.search(text)
        if match:
            line = source[: int(match[1])].count("\n") + 1
            text = _POSITION.sub("", text).strip()
            return f"{name}:{line}: MJML: {text}"
        return f"{name}: MJML: {text}: check that every <mj-...> tag is closed and nested right"
