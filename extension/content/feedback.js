/* "Report a mistake": the panel's form that sends the user's label and note to the server. */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.feedback) return;
  const { el, button } = C.layer;

  function form(entry) {
    const fb = entry.feedback;
    if (fb.sent) return el("div", { class: "feedback sent", role: "status" }, "Thanks — sent for review (" + G.verdicts.LABELS[fb.sent] + ").");
    const maxlength = String(G.contract.LIMITS.feedback_note_chars);
    const note = el("textarea", { class: "note-input", "data-action": "note", rows: "2", maxlength, placeholder: "Optional note (what is wrong?)", "aria-label": "Note" });
    note.value = fb.note;
    note.addEventListener("input", () => {
      fb.note = note.value;
    });
    // Keys typed here are ours, not the page's shortcuts.
    note.addEventListener("keydown", (event) => event.stopPropagation());
    const sendLabel = (label) => async () => {
      fb.sending = true;
      fb.error = null;
      C.panel.render(entry);
      const response = await C.send({ type: G.messages.TYPES.feedback, result: entry.result, label, note: fb.note.trim() });
      fb.sending = false;
      if (response && response.ok) fb.sent = label;
      else fb.error = (response && response.error && (response.error.title + (response.error.message ? ": " + response.error.message : ""))) || "Not sent";
      C.panel.render(entry);
    };
    return el(
      "div",
      { class: "feedback" },
      el("div", { class: "label" }, "This image is actually:"),
      el(
        "div",
        { class: "actions" },
        G.contract.FEEDBACK_LABELS.map((label) => button("feedback-" + label, G.verdicts.LABELS[label], sendLabel(label), { disabled: fb.sending })),
      ),
      note,
      fb.sending ? el("div", { class: "hint" }, "Sending…") : null,
      fb.error ? el("div", { class: "hint error-text" }, fb.error) : null,
    );
  }

  C.feedback = { form };
})();
