// The template editor's preview (webapp/templates/templates/edit.html); no inline script (CSP).
// - Every change in the editor is copied into the preview form's hidden "draft" field, so the
//   preview renders the unsaved text (htmx posts the form after a pause in typing).
// - When htmx has swapped in the preview's facts, the same form is submitted natively into
//   the sandboxed <iframe name="preview-frame">: the email itself comes from its own
//   endpoint under its own strict CSP, never inline in this page.
// - A refused test send (422) is shown where the confirmation would be.
"use strict";

(function () {
  function setUp() {
    const source = document.getElementById("source");
    const draft = document.getElementById("draft");
    const form = document.getElementById("preview-form");
    if (!source || !draft || !form) return;
    source.addEventListener("input", function () {
      draft.value = source.value;
    });
    // "Not sent: ..." comes back as a 422; htmx leaves error responses out unless told.
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      if (event.detail.xhr.status === 422 && event.detail.target.id === "test-result") {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target && event.target.id === "preview-meta") {
        form.submit();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
