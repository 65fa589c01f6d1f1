/*
 * The layer everything is drawn in: one closed shadow root on a host element whose
 * inline `!important` rules the page can't override, so pages can neither restyle
 * nor read the overlays. Also the DOM builder the overlays use (text only through
 * textContent, never innerHTML).
 */
(() => {
  "use strict";
  const G = globalThis.GammaDetect;
  const C = (G.content = G.content || {});
  if (C.layer) return;

  const HOST_STYLE = [
    "all: initial",
    "display: block",
    "position: absolute",
    "left: 0",
    "top: 0",
    "width: 0",
    "height: 0",
    "overflow: visible",
    "z-index: 2147483647",
    "pointer-events: none",
    "contain: none",
    "visibility: visible",
    "opacity: 1",
    "transform: none",
  ]
    .map((rule) => rule + " !important")
    .join("; ");

  let host = null;
  let layer = null;
  let ready = null;

  /** Resolves once the layer is in the page (putting it back if the page removed it). */
  function ensure() {
    if (host) {
      if (!host.isConnected) document.documentElement.appendChild(host);
      return Promise.resolve();
    }
    if (!ready) {
      ready = C.send({ type: G.messages.TYPES.css }).then((response) => {
        host = document.createElement("gamma-detect-root");
        host.setAttribute("style", HOST_STYLE);
        const shadow = host.attachShadow({ mode: "closed" });
        const style = document.createElement("style");
        style.textContent = (response && response.css) || "";
        shadow.appendChild(style);
        layer = el("div", { class: "layer" });
        shadow.appendChild(layer);
        document.documentElement.appendChild(host);
        C.layout.watch();
      });
    }
    return ready;
  }

  /** Tiny DOM builder: attributes, `on<event>` listeners, a style object, text or node children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "style" && typeof value === "object") {
        for (const [prop, v] of Object.entries(value)) node.style.setProperty(prop, v);
      } else if (name.startsWith("on") && typeof value === "function") {
        node.addEventListener(name.slice(2), value);
      } else {
        node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function button(action, text, onclick, extra) {
    return el("button", Object.assign({ type: "button", class: "btn", "data-action": action, onclick }, extra || {}), text);
  }

  C.layer = {
    ensure,
    el,
    button,
    /** The host element (null until the layer exists): layout measures from it, scans ignore it. */
    get host() {
      return host;
    },
    /** The shadow root's drawing surface (null until the layer exists). */
    get node() {
      return layer;
    },
  };
})();
