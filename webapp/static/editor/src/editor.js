// The Nurture code editor: CodeMirror 6 on top of a plain <textarea>.
//
// Progressive enhancement: the page works without JavaScript (the textarea is an ordinary
// form field). With it, the textarea is hidden and kept in sync with a CodeMirror view, and
// an "input" event is fired on it after every change, so whatever listens on the textarea
// (htmx's live validation: hx-trigger="input changed delay:400ms") keeps working.
//
// Markup contract (see webapp/templates/_editor.html):
//   <textarea data-editor="yaml|html" [data-problems-from="#live"] [data-save-form="#publish"]
//             [data-wrap]>
// - data-problems-from: after htmx swaps new content into that element, the element's
//   [data-problems] JSON attribute ([{line, message}]) becomes the editor's diagnostics.
// - data-save-form: Ctrl/Cmd+S submits that form (the editor never saves on its own).
// - data-wrap: long lines wrap on screen (the text itself is not changed): email copy.
//
// The editor never changes what was not typed: no auto-closed tags or brackets, and in the
// HTML/XML modes no re-indenting of a line as a closing tag is typed.

import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { xml } from "@codemirror/lang-xml";
import { yaml } from "@codemirror/lang-yaml";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { EditorState } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";

// MJML templates are XML; autoCloseTags off: the editor never writes what was not typed.
const LANGUAGES = {
  yaml: () => yaml(),
  xml: () => xml({ autoCloseTags: false }),
  html: () => xml({ autoCloseTags: false }),
};
// Re-indenting a line on input rewrites whitespace the author chose: only for YAML, where
// indentation is structure and the editor's guess helps.
const REINDENTS = { yaml: true };

function diagnosticsFor(doc, problems) {
  const out = [];
  for (const problem of problems) {
    const number = Math.min(Math.max(problem.line || 1, 1), doc.lines);
    const line = doc.line(number);
    out.push({
      from: line.from,
      to: Math.max(line.to, line.from),
      severity: "error",
      message: problem.message,
    });
  }
  return out;
}

function mount(textarea) {
  const mode = LANGUAGES[textarea.dataset.editor] ? textarea.dataset.editor : "yaml";
  const language = LANGUAGES[mode];
  const saveForm = textarea.dataset.saveForm
    ? document.querySelector(textarea.dataset.saveForm)
    : null;
  const save = () => {
    if (saveForm) saveForm.requestSubmit();
    return true;
  };
  const sync = EditorView.updateListener.of((update) => {
    if (!update.docChanged) return;
    textarea.value = update.state.doc.toString();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  });
  // CodeMirror injects a <style> element; the page's CSP admits it by this nonce only.
  const nonce = document.querySelector('meta[name="csp-nonce"]')?.getAttribute("content") || "";
  const label = textarea.getAttribute("aria-label") || textarea.labels?.[0]?.textContent || "";
  const view = new EditorView({
    parent: textarea.parentNode,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        foldGutter(),
        lintGutter(),
        history(),
        drawSelection(),
        REINDENTS[mode] ? indentOnInput() : [],
        textarea.dataset.wrap !== undefined ? EditorView.lineWrapping : [],
        bracketMatching(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        language(),
        EditorState.tabSize.of(2),
        keymap.of([
          { key: "Mod-s", run: save, preventDefault: true },
          indentWithTab,
          ...defaultKeymap,
          ...historyKeymap,
          ...searchKeymap,
        ]),
        EditorView.cspNonce.of(nonce),
        EditorView.contentAttributes.of({ "aria-label": label.trim() || "Source" }),
        EditorView.editable.of(!textarea.readOnly),
        EditorState.readOnly.of(textarea.readOnly),
        sync,
      ],
    }),
  });
  textarea.parentNode.insertBefore(view.dom, textarea);
  textarea.hidden = true;
  textarea.nurtureEditor = view;

  const source = textarea.dataset.problemsFrom;
  if (source) {
    const apply = (element) => {
      const holder = element.querySelector("[data-problems]") || element;
      if (!holder.dataset || holder.dataset.problems === undefined) return;
      let problems = [];
      try {
        problems = JSON.parse(holder.dataset.problems);
      } catch (_) {
        problems = [];
      }
      view.dispatch(setDiagnostics(view.state, diagnosticsFor(view.state.doc, problems)));
    };
    document.body.addEventListener("htmx:afterSwap", (event) => {
      const target = document.querySelector(source);
      if (target && (event.target === target || target.contains(event.target))) apply(target);
    });
    const target = document.querySelector(source);
    if (target) apply(target);
  }
  return view;
}

function mountAll(root) {
  root.querySelectorAll("textarea[data-editor]").forEach((textarea) => {
    if (!textarea.nurtureEditor) mount(textarea);
  });
}

window.NurtureEditor = { mount, mountAll };
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => mountAll(document));
} else {
  mountAll(document);
}
