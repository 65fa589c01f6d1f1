/*
 * The badge on an image's corner: queued, checking, the verdict and probability,
 * an error or "Skipped". Clicking it opens the full panel (and retries an error).
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.badge) return;
  const { el } = C.layer;

  function wanted(entry) {
    if (entry.panel || !entry.el) return false;
    if (!entry.scan && !entry.menu) return false;
    if (entry.state === "skipped") return entry.showLabel;
    if (entry.state === "done") {
      const group = G.verdicts.describeVerdict(entry.result && entry.result.verdict).group;
      if (group === "uncertain" && !C.config.values.badgeUncertain) return false;
    }
    return entry.state !== "new";
  }

  function content(entry) {
    switch (entry.state) {
      case "queued":
        // a still ring: a page scan queues every image at once, and fifty spinners redraw the page every frame
        return { cls: "pending queued", text: "Queued", title: "Waiting to be checked", accent: "#52525b" };
      case "checking": {
        const p = entry.progress;
        if (p && p.state === "waiting") return { cls: "pending", text: "Server busy…", title: "Rate limited: retrying", accent: "#8a6100" };
        return { cls: "pending", text: "Checking…", title: "Checking with the gamma server", accent: "#52525b" };
      }
      case "done": {
        const s = G.verdicts.summarise(entry.result);
        // Evidence that decided replaces the pixel probability; proof gets a badge of its own.
        const why = G.evidence.badgeReason(entry.result);
        const text = why ? s.short + " · " + why : G.verdicts.badgeText(entry.result);
        return { cls: G.evidence.hasProof(entry.result) ? "done proof" : "done", text, title: s.label + " — AI probability " + s.probability + " (click for details)", accent: s.colour, group: s.group };
      }
      case "error":
        return { cls: "error", text: "! " + entry.error.title, title: entry.error.hint || entry.error.message || "", accent: "#3f3f46" };
      case "skipped": {
        // On a small image the full label would cover it (and its neighbours): one word, the reason on hover.
        const narrow = entry.shownWidth < 150; // measured when it was classified (content/scan.js)
        const why = entry.reason === "too_small" ? "too small" : entry.reason === "graphic" ? "graphic" : "not fetchable";
        return { cls: "skipped" + (narrow ? " compact" : ""), text: narrow ? "Skipped" : "Skipped: " + why, title: entry.label, accent: "#71717a" };
      }
      default:
        return null;
    }
  }

  function render(entry) {
    if (!wanted(entry)) {
      if (entry.badge) entry.badge.remove();
      entry.badge = null;
      return;
    }
    const c = content(entry);
    if (!c) return;
    if (!entry.badge) {
      entry.badge = el("button", {
        class: "badge",
        type: "button",
        onclick: (event) => {
          event.preventDefault();
          event.stopPropagation();
          if (entry.state === "skipped") return;
          C.panel.open(entry);
          if (entry.state === "error") C.check(entry, true);
        },
      });
      C.layer.node.appendChild(entry.badge);
    }
    const b = entry.badge;
    b.className = "badge " + c.cls;
    b.dataset.state = entry.state;
    if (c.group) b.dataset.group = c.group;
    else delete b.dataset.group;
    b.style.setProperty("--accent", c.accent);
    b.title = c.title;
    b.setAttribute("aria-label", "AI image check: " + c.text);
    b.replaceChildren(el("span", { class: "dot", "aria-hidden": "true" }), el("span", { class: "text" }, c.text));
  }

  C.badge = { render };
})();
