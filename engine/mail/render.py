"""The one renderer: MJML compiled once per template version, two Jinja renders per recipient.

Compiling MJML costs milliseconds; a nurture run sends the same template to thousands of
prospects. So a template is compiled once per *content hash* (its source plus the partials
it includes) into two Jinja templates, HTML and plain text, and each recipient costs two
bounded Jinja renders. The hash doubles as the template version recorded with every sent
message (``template_checksum``), so "which version did this prospect get" has an answer.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateSyntaxError

from engine.mail.catalog import (
    TEMPLATE_SUFFIX,
    FileTemplateCatalog,
    SourcesCatalog,
    TemplateError,
)
from engine.mail.footer import footer_problem
from engine.mail.links import link_problems
from engine.mail.parts import TEXT_ENV, email_parts
from engine.mail.sandbox import render_bounded, render_bounded_chunks
from engine.mail.template_check import template_safety_problems
from engine.mail.text import tidy_text
from engine.mail.values import template_values

# Subjects and preheaders are one line; a few thousand characters is already absurd.
_LINE_MAX_CHARS = 10_000
# Distinct template versions kept compiled; far more than a deployment ever has live.
_MAX_VERSIONS = 256


@dataclass(frozen=True)
class CompiledTemplate:
    """One template version, ready to render: the Jinja templates for both parts."""

    checksum: str  # sha256 hex of the template source and the partials it includes
    html_source: str  # compiled MJML, Jinja intact
    text_source: str  # derived from html_source, Jinja intact
    html: Template
    text: Template


@dataclass(frozen=True)
class RenderedEmail:
    """One recipient's email before tracking and MIME; ``template_checksum`` names the
    template version it came from (stored with the sent message)."""

    subject: str
    html: str
    text: str
    template_checksum: str
    preheader: str = ""  # rendered, as the inbox shows it next to the subject
    # ``html`` as Jinja yielded it, and the template that did: the send path encodes the
    # template's literal text once (engine.mail.outgoing) instead of once per recipient.
    html_chunks: tuple[str, ...] = field(default=(), repr=False, compare=False)
    html_template: Template | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class StoredTemplate:
    """A template version from the database, as the renderer needs it.

    ``checksum`` is the version's render checksum (:func:`content_checksum` of its
    sources) and names its compiled form; ``load`` returns the sources (``{key: template,
    include path: text}``) and is called only when this process has not compiled that
    version yet, so a send batch reads template text once per version, not per email.
    """

    key: str
    checksum: str
    load: Callable[[], Mapping[str, str]]


@dataclass(frozen=True)
class _Entry:
    stamps: tuple[tuple[Path, int, int], ...]  # (file, mtime_ns, size) for every file read
    includes: tuple[str, ...]
    compiled: CompiledTemplate


def content_checksum(sources: Mapping[str, str], key: str) -> str:
    """sha256 of the template ``sources[key]`` and its partials (sorted by path).

    The template's own key is left out, so renaming a file does not make a new version.
    """
    digest = hashlib.sha256(sources[key].encode("utf-8"))
    for path in sorted(p for p in sources if p != key):
        digest.update(b"\0" + path.encode("utf-8") + b"\0" + sources[path].encode("utf-8"))
    return digest.hexdigest()


def _stamp(path: Path) -> tuple[Path, int, int]:
    status = os.stat(path)
    return path, status.st_mtime_ns, status.st_size


def _fresh(entry: _Entry) -> bool:
    try:
        return all(_stamp(path)[1:] == (mtime, size) for path, mtime, size in entry.stamps)
    except OSError:
        return False


class Renderer:
    """Renders emails from stored template versions (what workers send) or from a
    :class:`FileTemplateCatalog` (a templates folder); safe to share between threads.

    Either way a template is compiled once per content checksum. For a folder, a cache hit
    costs one ``stat`` per file of the template (the template and its partials), so an
    edited file is picked up on the next email without a restart.
    """

    def __init__(
        self,
        catalog: FileTemplateCatalog | None = None,
        *,
        max_seconds: float = 2.0,
        max_chars: int = 2_000_000,
    ) -> None:
        self.catalog = catalog
        self.max_seconds = max_seconds
        self.max_chars = max_chars
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._versions: dict[str, CompiledTemplate] = {}
        self._line = functools.lru_cache(maxsize=1024)(self._compile_line)

    # -- compiling ------------------------------------------------------------------------

    def compiled(self, template: str | StoredTemplate) -> CompiledTemplate:
        """The template compiled: a stored version by its checksum, or the folder's
        ``key``, from cache when none of its files changed.

        Raises :class:`TemplateError` (with file and line) when it cannot be compiled.
        """
        if isinstance(template, StoredTemplate):
            return self._compiled_stored(template)
        key = template
        if self.catalog is None:
            raise TemplateError([f"template {key!r}: this process renders stored versions only"])
        entry = self._entries.get(key)
        if entry is not None and _fresh(entry):
            return entry.compiled
        path = self.catalog.path_of(key)
        if path is None:
            raise TemplateError([f"bad template key {key!r}"])
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and _fresh(entry):
                return entry.compiled
            entry = self._reuse(key, path, entry) or self._compile(key, path)
            self._entries[key] = entry
            return entry.compiled

    def _compiled_stored(self, template: StoredTemplate) -> CompiledTemplate:
        compiled = self._versions.get(template.checksum)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._versions.get(template.checksum)
            if compiled is not None:
                return compiled
            sources = dict(template.load())
            if template.key not in sources or (
                content_checksum(sources, template.key) != template.checksum
            ):
                raise TemplateError(
                    [
                        f"template {template.key!r}: the stored version does not match its "
                        "checksum (altered in the database?); save the template again"
                    ]
                )
            files = {p: text for p, text in sources.items() if p != template.key}
            files[f"{template.key}{TEMPLATE_SUFFIX}"] = sources[template.key]
            html, _ = SourcesCatalog(files).compile_with_sources(template.key)
            return self._build(template.key, template.checksum, html)

    def _reuse(self, key: str, path: Path, previous: _Entry | None) -> _Entry | None:
        """A file was touched: re-read the same files and, if their content hashes to a
        version we have, keep it. If the template text changed its includes may have too,
        but then its hash changed as well and this finds nothing."""
        if previous is None:
            return None
        files = self._files(key, path, previous.includes)
        try:
            stamps = tuple(_stamp(file) for _, file in files)
            sources = {name: file.read_text(encoding="utf-8") for name, file in files}
        except (OSError, UnicodeDecodeError):
            return None
        known = self._versions.get(content_checksum(sources, key))
        return None if known is None else _Entry(stamps, previous.includes, known)

    def _files(self, key: str, path: Path, includes: tuple[str, ...]) -> list[tuple[str, Path]]:
        root = self.catalog.root if self.catalog is not None else Path()
        return [(key, path)] + [(include, root / include) for include in includes]

    def _compile(self, key: str, path: Path) -> _Entry:
        # Retried while an editor is saving (each save is atomic, a burst of them is not).
        for _ in range(10):
            assert self.catalog is not None  # compiled() checked it
            html, sources = self.catalog.compile_with_sources(key)
            includes = tuple(sorted(p for p in sources if p != key))
            files = self._files(key, path, includes)
            try:
                # Stat first, then check the files still say what was compiled: any later
                # edit moves the mtime, so the cache can never hold stale HTML as fresh.
                stamps = tuple(_stamp(file) for _, file in files)
                unchanged = all(
                    file.read_text(encoding="utf-8") == sources[name] for name, file in files
                )
            except (OSError, UnicodeDecodeError):
                unchanged = False
            if unchanged:
                checksum = content_checksum(sources, key)
                compiled = self._versions.get(checksum) or self._build(key, checksum, html)
                return _Entry(stamps, includes, compiled)
        raise TemplateError([f"template {key!r} keeps changing while it is compiled; retry"])

    def _build(self, key: str, checksum: str, html: str) -> CompiledTemplate:
        try:
            parts = email_parts(html)  # usually already built by the catalog's checks
        except TemplateSyntaxError as exc:  # the catalog checked the HTML; text is derived
            raise TemplateError([f"template {key!r}: cannot compile: {exc}"]) from exc
        compiled = CompiledTemplate(
            checksum=checksum,
            html_source=parts.html_source,
            text_source=parts.text_source,
            html=parts.html,
            text=parts.text,
        )
        if len(self._versions) >= _MAX_VERSIONS:
            del self._versions[next(iter(self._versions))]
        self._versions[checksum] = compiled
        return compiled

    def _compile_line(self, source: str) -> Template:
        problems = template_safety_problems(source)
        if problems:
            raise TemplateError(problems)
        try:
            return TEXT_ENV.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateError([f"line {exc.lineno}: {exc.message}"]) from exc

    # -- rendering ------------------------------------------------------------------------

    def render(
        self,
        template: str | StoredTemplate,
        subject_source: str,
        preheader_source: str | None,
        context: Mapping[str, Any],
    ) -> RenderedEmail:
        """Render the email (a stored version, or the folder's key) for one recipient.

        ``context`` holds the variables of templates/README.md except ``subject`` and
        ``preheader``, which are rendered here first (as plain text, on one line) and then
        given to the body. Missing values (None, blank, an absent custom attribute) print
        as nothing and let the template's fallback apply (:mod:`engine.mail.values`).
        Raises :class:`TemplateError` saying which part failed and why, also when this
        recipient's email would lack the unsubscribe link or the postal address, or would
        link to a ``javascript:``, ``vbscript:`` or ``data:`` URL (never sent).
        """
        compiled = self.compiled(template)
        key = template.key if isinstance(template, StoredTemplate) else template
        values = template_values(context)
        values["subject"] = values["preheader"] = ""
        subject = self._render_line(key, "subject", subject_source, values)
        values["subject"] = subject
        if preheader_source:
            values["preheader"] = self._render_line(key, "preheader", preheader_source, values)
        chunks = self._render_chunks(key, compiled.html, values)
        html = "".join(chunks)
        text = tidy_text(self._render(key, "text", compiled.text, values, self.max_chars))
        problem = footer_problem(
            html, text, str(context["unsubscribe_url"]), str(context["sender"]["postal_address"])
        )
        if problem is None:
            problem = "; ".join(link_problems(html, chunks)) or None
        if problem is not None:
            raise TemplateError([f"template {key!r}: {problem}"])
        return RenderedEmail(
            subject,
            html,
            text,
            compiled.checksum,
            values["preheader"],
            tuple(chunks),
            compiled.html,
        )

    def _render_line(self, key: str, what: str, source: str, values: dict[str, Any]) -> str:
        try:
            template = self._line(source)
        except TemplateError as exc:
            raise TemplateError([f"template {key!r}: {what} {source!r}: {exc}"]) from exc
        # One line for a header: a newline in a Subject would end the header.
        return " ".join(self._render(key, what, template, values, _LINE_MAX_CHARS).split())

    def _render_chunks(self, key: str, template: Template, values: dict[str, Any]) -> list[str]:
        try:
            return render_bounded_chunks(template, values, self.max_chars, self.max_seconds)
        except Exception as exc:  # as _render says
            raise TemplateError(
                [f"template {key!r}: rendering the HTML failed: {type(exc).__name__}: {exc}"]
            ) from exc

    def _render(
        self, key: str, what: str, template: Template, values: dict[str, Any], max_chars: int
    ) -> str:
        try:
            return render_bounded(template, values, max_chars, self.max_seconds)
        except Exception as exc:  # any template failure is this email's, reported as such
            raise TemplateError(
                [f"template {key!r}: rendering the {what} failed: {type(exc).__name__}: {exc}"]
            ) from exc
