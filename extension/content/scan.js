/*
 * The page scan: images that come into view (IntersectionObserver, and images
 * added or changed later: MutationObserver) are classified; eligible ones are
 * queued and checked a few at a time, visible ones first, the rest get a
 * "skipped" label.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.scan) return;
  const { entries } = C;

  const MAX_IN_FLIGHT = 6; // scan checks this page has outstanding at once
  // Images classified (each given its badge) per animation frame: a page's worth at once put the style, layout
  // and paint of fifty new badges in one frame (~18 ms of CPU on 2 busy cores), and the page dropped it.
  const PER_FRAME = 4;

  let scanning = false;
  let inFlight = 0;
  let io = null;
  let mo = null;
  let backlog = []; // [img, rect]: seen in view, not classified yet
  let draining = false;

  function start() {
    if (scanning) return;
    scanning = true;
    C.layer.ensure();
    io = new IntersectionObserver(onIntersect, { rootMargin: "100px 0px" });
    mo = new MutationObserver(onMutations);
    mo.observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["src", "srcset"] });
    for (const img of document.images) io.observe(img);
    C.counts.changed();
  }

  function stop() {
    if (!scanning) return;
    scanning = false;
    if (io) io.disconnect();
    if (mo) mo.disconnect();
    io = null;
    mo = null;
    backlog = [];
    for (const [key, entry] of Array.from(entries.all)) {
      entry.scan = false;
      if (!entry.menu) entries.remove(key, entry);
      else C.render(entry);
    }
    inFlight = 0;
    C.counts.changed();
  }

  /** Stop watching an image (checked, skipped or gone). */
  function forget(img) {
    if (io) io.unobserve(img);
  }

  function onMutations(records) {
    if (!scanning) return;
    for (const record of records) {
      if (record.type === "attributes") {
        const img = record.target;
        if (!(img instanceof HTMLImageElement)) continue;
        const entry = entries.byElement(img);
        if (entry && entry.src !== entries.srcOf(img)) {
          const wasMenu = entry.menu;
          entries.remove(img, entry);
          if (wasMenu) continue;
        }
        io.observe(img);
        continue;
      }
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1 || node === C.layer.host) continue;
        if (node instanceof HTMLImageElement) io.observe(node);
        else if (node.querySelectorAll) for (const img of node.querySelectorAll("img")) io.observe(img);
      }
    }
    entries.pruneDetached();
  }

  function onIntersect(records) {
    for (const record of records) {
      const img = record.target;
      const entry = entries.byElement(img);
      if (!record.isIntersecting) {
        if (entry) entry.visible = false;
        else backlog = backlog.filter(([waiting]) => waiting !== img);
        continue;
      }
      if (entry && entry.scan && entry.src === entries.srcOf(img)) {
        entry.visible = true;
        continue;
      }
      backlog.push([img, record.boundingClientRect]);
    }
    drain();
    pump();
  }

  /**
   * Classify the backlog PER_FRAME images an animation frame, their badges placed before that frame paints; the
   * checks start once it is empty, so that the page's new badges are not drawn while the checks begin.
   */
  function drain() {
    if (draining || !backlog.length) return;
    draining = true;
    requestAnimationFrame(() => {
      draining = false;
      for (const [img, rect] of backlog.splice(0, PER_FRAME)) evaluate(img, rect);
      C.layout.now(); // one scheduled from here would wait for the next frame, and this one would paint them unplaced
      if (backlog.length) drain();
      else pump();
    });
  }

  /**
   * Classify one visible image: queue it for a check or label it skipped. `rect`: where the observer saw it; asking
   * the image instead after the previous image's badge went in would make the page lay out again, once per image.
   */
  function evaluate(img, rect) {
    if (!scanning || !img.isConnected) return;
    if (!img.complete) {
      const again = () => {
        img.removeEventListener("load", again);
        img.removeEventListener("error", again);
        evaluate(img);
        pump();
      };
      img.addEventListener("load", again);
      img.addEventListener("error", again);
      return;
    }
    const r = rect || img.getBoundingClientRect();
    const src = entries.srcOf(img);
    let entry = entries.byElement(img);
    if (entry && entry.src !== src) {
      entries.remove(img, entry);
      entry = null;
    }
    if (!entry) entry = entries.create(img, src);
    entry.scan = true;
    entry.visible = true;
    if (entry.state === "done" || entry.state === "checking" || entry.state === "error") {
      C.render(entry); // checked from the menu before the scan started
      return;
    }
    const decision = G.eligibility.classify({
      src,
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
      width: r.width,
      height: r.height,
      complete: img.complete,
    });
    if (decision.eligible) {
      entry.state = "queued";
    } else {
      entry.state = "skipped";
      entry.reason = decision.reason;
      entry.label = decision.label;
      entry.showLabel = decision.showLabel;
      entry.shownWidth = r.width; // the badge's label fits to it
      forget(img);
    }
    C.render(entry);
    C.counts.changed();
  }

  /** Check a queued entry as one of this page's MAX_IN_FLIGHT, then start the next. */
  function run(entry) {
    inFlight += 1;
    C.check(entry, false, true).finally(() => {
      inFlight = Math.max(0, inFlight - 1);
      if (entry.el && entry.state !== "queued") forget(entry.el);
      pump();
    });
  }

  /** Start queued checks, visible images first, a few at a time. */
  function pump() {
    if (!scanning) return;
    while (inFlight < MAX_IN_FLIGHT) {
      let next = null;
      for (const entry of entries.all.values()) {
        if (entry.state === "queued" && entry.visible && entry.el && entry.el.isConnected) {
          next = entry;
          break;
        }
      }
      if (!next) return;
      run(next);
    }
  }

  C.scan = {
    start,
    stop,
    forget,
    run,
    get scanning() {
      return scanning;
    },
  };
})();
