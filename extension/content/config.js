/*
 * This page's settings from the worker (scan automatically? badge uncertain
 * results?), applied at once when Options change them.
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.config) return;

  let values = { badgeUncertain: true, autoScan: false };

  function apply(config) {
    const before = values.badgeUncertain;
    values = Object.assign({}, values, config);
    if (before !== values.badgeUncertain) for (const entry of C.entries.all.values()) C.render(entry);
  }

  C.config = {
    apply,
    get values() {
      return values;
    },
  };
})();
