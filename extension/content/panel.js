/*
 * The result panel beside an image: the verdict, what decided it and the
 * provenance evidence found in the file, probability and model, the region
 * that stands out (outlined over the picture) or that none does, with
 * "Show where", "Report a mistake" and an explanation link; or the error with
 * "Try again" / "Options"; or why a scan skipped the image; or the check's
 * progress. One body builder per entry state.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.panel) return;
  const { el, button } = C.layer;
  const TYPES = G.messages.TYPES;

  function open(entry) {
    if (!C.layer.node) return;
    if (!entry.panel) {
      entry.panel = el("div", { class: "panel", role: "dialog", "aria-label": "AI image check" });
      // Clicks inside the panel must not reach the page (links, lightboxes).
      for (const type of ["click", "mousedown", "mouseup", "pointerdown", "pointerup"]) {
        entry.panel.addEventListener(type, (event) => event.stopPropagation());
      }
      entry.panel.addEventListener("keydown", (event) => {
        if (event.key === "Escape") {
          event.stopPropagation();
          close(entry);
        }
      });
      C.layer.node.appendChild(entry.panel);
    }
    C.badge.render(entry);
    render(entry);
  }

  function close(entry) {
    C.heatmap.hide(entry); // the map and the outline belong to the open panel
    if (entry.panel) entry.panel.remove();
    entry.panel = null;
    C.render(entry);
  }

  function resultBody(entry, head, body) {
    const s = G.verdicts.summarise(entry.result);
    head.append(el("span", { class: "verdict", "data-verdict": s.verdict }, s.label));
    if (G.evidence.hasProof(entry.result)) head.append(el("span", { class: "proof-mark", title: "Content Credentials from a signer on the server's trust list" }, "Proof"));
    const p = entry.result.ai_probability;
    const pct = typeof p === "number" ? Math.round(Math.min(1, Math.max(0, p)) * 1000) / 10 : 0;
    body.append(
      el("div", { class: "prob" }, "AI probability ", el("strong", {}, s.probability)),
      el("div", { class: "meter", role: "img", "aria-label": "AI probability " + s.probability }, el("div", { class: "fill", style: { width: pct + "%" } })),
      el("div", { class: "model" }, "Model: " + s.model),
    );
    if (s.device) body.append(el("div", { class: "device" }, s.device));
    const reason = G.evidence.describeReason(entry.result.verdict_reason);
    if (reason) body.append(el("div", { class: "reason" }, "Verdict from " + reason.text));
    const lines = G.evidence.lines(entry.result);
    if (lines.length) {
      const item = (line) => el("li", { "data-strength": line.strength || "none", class: line.failed ? "failed" : null }, line.text);
      body.append(el("ul", { class: "evidence", "aria-label": "Provenance evidence in the file" }, lines.map(item)));
    }
    if (entry.result.cached) body.append(el("div", { class: "note" }, "Result from the server's cache"));
    if (s.device) body.append(el("div", { class: "note" }, "Not checked here: Content Credentials, watermark (ask the server for a second opinion)"));
    // The region the result marks is outlined over the picture; a result that marks none has no map to show.
    const region = G.outline.regionState(entry.result);
    const hasHeatmap = Boolean(entry.result.heatmap_url);
    if (region === "marked") {
      const share = G.verdicts.formatProbability(entry.result.ai_content.region.share);
      const where = entry.el ? "Outlined on the picture: the region that stands out" : "A region stands out";
      body.append(el("div", { class: "region" }, where + " (" + share + " of the image)"));
      C.heatmap.outline(entry);
    } else if (region === "none") body.append(el("div", { class: "region" }, "No region stands out"));
    const hm = entry.heatmap;
    const canShow = hasHeatmap && region !== "none";
    const whereText = !hasHeatmap ? "No heatmap" : hm && hm.loading ? "Loading…" : hm && hm.shown ? "Hide where" : "Show where";
    body.append(
      el(
        "div",
        { class: "actions" },
        button("where", whereText, () => C.heatmap.toggle(entry), { disabled: !canShow || Boolean(hm && hm.loading), title: region === "none" ? "No region stands out" : null }),
        button("report", "Report a mistake", () => {
          entry.feedback.open = !entry.feedback.open;
          render(entry);
        }),
      ),
    );
    if (hm && hm.error) body.append(el("div", { class: "hint error-text" }, "Heatmap: " + hm.error));
    if (entry.feedback.open) body.append(C.feedback.form(entry));
    body.append(
      el(
        "a",
        {
          class: "explain",
          href: "#",
          "data-action": "explain",
          onclick: (event) => {
            event.preventDefault();
            C.send({ type: TYPES.openHelp });
          },
        },
        "What does this score mean? It can be wrong.",
      ),
    );
    return s.colour;
  }

  function errorBody(entry, head, body) {
    const e = entry.error;
    head.append(el("span", { class: "verdict" }, e.title || "Check failed"));
    if (e.hint) body.append(el("div", { class: "hint" }, e.hint));
    if (e.message && e.message !== e.title) body.append(el("div", { class: "detail" }, e.message));
    const actions = el("div", { class: "actions" });
    if (e.retry !== false) actions.append(button("retry", "Try again", () => C.check(entry, true)));
    if (G.errors.describeError(e.code).options) actions.append(button("options", "Options", () => C.send({ type: TYPES.openOptions })));
    if (actions.childNodes.length) body.append(actions);
    return "#3f3f46";
  }

  function skippedBody(entry, head, body) {
    head.append(el("span", { class: "verdict" }, entry.label || "Skipped"));
    body.append(el("div", { class: "hint" }, "Page scans skip small images and graphics; right-click the image to check it anyway."));
    return "#52525b";
  }

  function progressBody(entry, head, body) {
    const p = entry.progress;
    let text = "Checking…";
    if (p && p.state === "waiting") {
      const left = Math.max(0, (p.at || Date.now()) + (p.retryInMs || 0) - Date.now());
      text = left >= 500 ? "Server busy (rate limited) — retrying in " + Math.round(left / 1000) + " s" : "Server busy (rate limited) — retrying…";
      tickWaiting();
    } else if (p && p.state === "fetching") text = "Downloading the image…";
    else if (p && p.state === "queued") text = "Queued on the server…";
    else if (p && p.state === "started") text = "Analysing…";
    head.append(el("span", { class: "verdict" }, "Checking"));
    body.append(el("div", { class: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), el("span", {}, text)));
    return "#52525b";
  }

  const BODIES = { done: resultBody, error: errorBody, skipped: skippedBody };

  /** Rebuild an open panel's content for the entry's state (each builder returns the accent colour). */
  function render(entry) {
    const panel = entry.panel;
    const head = el("div", { class: "head" });
    const body = el("div", { class: "body" });
    const accent = (BODIES[entry.state] || progressBody)(entry, head, body);
    head.append(el("button", { type: "button", class: "close", "data-action": "close", "aria-label": "Close", title: "Close", onclick: () => close(entry) }, "×"));
    panel.dataset.state = entry.state;
    panel.style.setProperty("--accent", accent);
    panel.replaceChildren(head, body);
    C.layout.schedule(); // new content can change its height: place it beside the picture again
  }

  // Re-render "retrying in N s" once a second while a panel shows it.
  let waitingTimer = null;
  function tickWaiting() {
    if (waitingTimer) return;
    waitingTimer = setTimeout(() => {
      waitingTimer = null;
      for (const entry of C.entries.all.values()) {
        if (entry.panel && entry.state === "checking" && entry.progress && entry.progress.state === "waiting") render(entry);
      }
    }, 1000);
  }

  C.panel = { open, close, render };
})();
