/* Drawing one entry: its badge, its open panel, then a layout pass to place them. */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.render) return;

  C.render = function render(entry) {
    if (!C.layer.node) {
      C.layer.ensure().then(() => render(entry));
      return;
    }
    C.badge.render(entry);
    if (entry.panel) C.panel.render(entry);
    C.layout.schedule();
  };
})();
