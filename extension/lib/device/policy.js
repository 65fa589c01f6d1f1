/*
 * The crop policy of gamma_detect/crops.py, ported for the on-device runtime: plan the views of
 * an image, cut them, and stitch per-view maps back at the working resolution with feathered
 * weights. Every number comes from the manifest's crop_policy (defaults as CropPolicy's for
 * fields an older manifest lacks). Python's round() rounds half to even: so does `pyRound`.
 */
(function (root, factory) {
  const node = typeof module === "object" && module.exports;
  const D = node ? null : root.GammaDetect.device;
  const api = factory(node ? require("./resize.js") : D.resize);
  if (node) module.exports = api;
  else D.policy = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function (resizeLib) {
  "use strict";

  const f32 = Math.fround;
  const { resize, image } = resizeLib;

  const DEFAULTS = Object.freeze({
    input_size: 224, max_grid: 3, work_side: 672, min_scale: 0.5, min_side: 64,
    coarse_grid: null, refine_bands: [], work_pixels: 0, feather: 32,
  });

  class ImageTooSmall extends Error {
    constructor(message) {
      super(message);
      this.code = "image_too_small";
    }
  }

  function pyRound(v) {
    const r = Math.round(v);
    return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function positions(length, size, maxCount) {
    if (length <= size) return [0];
    const count = Math.min(maxCount, Math.ceil(length / size));
    if (count <= 1) return [Math.floor((length - size) / 2)];
    const out = [];
    for (let i = 0; i < count; i += 1) out.push(pyRound((i * (length - size)) / (count - 1)));
    return out;
  }

  /** A CropPolicy from the manifest's crop_policy (known fields only, as CropPolicy.from_dict). */
  function fromManifest(cropPolicy) {
    const p = {};
    for (const key of Object.keys(DEFAULTS)) p[key] = cropPolicy && key in cropPolicy ? cropPolicy[key] : DEFAULTS[key];
    p.staged = p.coarse_grid !== null && p.coarse_grid !== undefined;
    return Object.freeze(p);
  }

  function scaleFor(p, height, width) {
    const short = Math.min(height, width);
    if (short < p.min_side) throw new ImageTooSmall(`image is ${width}x${height}; the short side must be at least ${p.min_side} px`);
    if (short < p.input_size) return p.input_size / short;
    let scale = short > p.work_side ? Math.max(p.min_scale, p.work_side / short) : 1.0;
    if (p.work_pixels && height * width * scale * scale > p.work_pixels) {
      scale = Math.max(Math.sqrt(p.work_pixels / (height * width)), p.input_size / short);
    }
    return scale;
  }

  function scaled(height, width, scale) {
    return [Math.max(1, pyRound(height * scale)), Math.max(1, pyRound(width * scale))];
  }

  /** CropPolicy.plan for an array of height x width (decoded at full size: native = the array). */
  function plan(p, height, width) {
    const [h, w] = scaled(height, width, scaleFor(p, height, width));
    const s = p.input_size;
    let boxes = [];
    for (const y of positions(h, s, p.max_grid)) for (const x of positions(w, s, p.max_grid)) boxes.push([y, x]);
    let first = null;
    if (p.staged) {
      let coarse = [];
      if (p.coarse_grid) {
        for (const y of positions(h, s, p.coarse_grid)) for (const x of positions(w, s, p.coarse_grid)) coarse.push([y, x]);
      }
      const key = (b) => b[0] + "," + b[1];
      const inCoarse = new Set(coarse.map(key));
      boxes = coarse.concat(boxes.filter((b) => !inCoarse.has(key(b))));
      first = coarse.length;
    }
    const side = Math.min(height, width);
    const globalBox = [Math.floor((height - side) / 2), Math.floor((width - side) / 2), side];
    const stageOne = first === null ? boxes.length : first;
    return { height, width, scale: h / height, boxes, globalBox, first, working: [h, w], views: boxes.length + 1, firstViews: stageOne + 1 };
  }

  function crop(img, top, left, h, w) {
    const cn = img.channels;
    const out = new Uint8Array(h * w * cn);
    for (let y = 0; y < h; y += 1) {
      const from = ((top + y) * img.width + left) * cn;
      out.set(img.data.subarray(from, from + w * cn), y * w * cn);
    }
    return image(out, w, h, cn);
  }

  /**
   * Tiles: the image at its working resolution with its plan; views(stage) gives the uint8 views of
   * stage 0 (its crops, then the global view), stage 1 (the other crops) or all (null), as Tiles.views.
   */
  function tile(p, rgb) {
    const pl = plan(p, rgb.height, rgb.width);
    const [h, w] = pl.working;
    const work = resize(rgb, w, h);
    const s = p.input_size;
    const first = pl.first === null ? pl.boxes.length : pl.first;
    function views(stage) {
      const crops = pl.boxes.map(([y, x]) => crop(work, y, x, s, s));
      const [top, left, side] = pl.globalBox;
      const whole = stage !== 1 ? [resize(crop(rgb, top, left, side, side), s, s)] : [];
      if (stage === 0) return crops.slice(0, first).concat(whole);
      if (stage === 1) return crops.slice(first);
      return crops.slice(0, first).concat(whole, crops.slice(first));
    }
    return { plan: pl, views };
  }

  function ramp(n, atStart, atEnd, feather) {
    const out = new Float32Array(n);
    for (let k = 0; k < n; k += 1) {
      const i = f32(k + 0.5);
      let distance = Infinity;
      if (!atStart) distance = Math.min(distance, i);
      if (!atEnd) distance = Math.min(distance, f32(n - i));
      const t = Math.min(1, Math.max(0, f32(distance / feather)));
      out[k] = f32(f32(t * t) * f32(3 - f32(2 * t)));
    }
    return out;
  }

  /**
   * CropPolicy.stitch: per-view maps (Float32Array of M*M*C each, view order) back at the working
   * resolution, long side at most maxSide. Returns { data: Float32Array(H*W*C), width: W, height: H, channels: C }.
   */
  function stitch(p, maps, mapSide, channels, pl, maxSide) {
    const [h, w] = pl.working;
    const f = maxSide ? Math.min(1.0, maxSide / Math.max(h, w)) : 1.0;
    const H = Math.max(1, pyRound(h * f));
    const W = Math.max(1, pyRound(w * f));
    const s = Math.max(1, Math.min(pyRound(p.input_size * f), H, W));
    const C = channels;
    const first = pl.first === null ? pl.boxes.length : Math.min(pl.first, pl.boxes.length);
    const grid = maps.slice(0, first).concat(maps.slice(first + 1));
    const boxes = pl.boxes.slice(0, grid.length);
    const total = new Float32Array(H * W * C);
    const weight = new Float32Array(H * W);
    const feather = Math.max(1.0, p.feather * f);
    const asImage = (m) => image(m, mapSide, mapSide, C);
    grid.forEach((m, index) => {
      const y = Math.min(pyRound(boxes[index][0] * f), H - s);
      const x = Math.min(pyRound(boxes[index][1] * f), W - s);
      const ry = ramp(s, y === 0, y + s >= H, feather);
      const rx = ramp(s, x === 0, x + s >= W, feather);
      const r = resize(asImage(m), s, s).data;
      for (let j = 0; j < s; j += 1) {
        for (let i = 0; i < s; i += 1) {
          const wgt = f32(ry[j] * rx[i]);
          const o = (y + j) * W + x + i;
          for (let c = 0; c < C; c += 1) total[o * C + c] = f32(total[o * C + c] + f32(wgt * r[(j * s + i) * C + c]));
          weight[o] = f32(weight[o] + wgt);
        }
      }
    });
    const [top, left, side] = pl.globalBox;
    const gt = pyRound(top * pl.scale * f);
    const gl = pyRound(left * pl.scale * f);
    const gs = Math.max(1, Math.min(pyRound(side * pl.scale * f), H - gt, W - gl));
    const base = resize(asImage(maps[first]), gs, gs).data;
    const out = new Float32Array(H * W * C);
    for (let Y = 0; Y < H; Y += 1) {
      const by = Math.min(gs - 1, Math.max(0, Y - gt));
      for (let X = 0; X < W; X += 1) {
        const bx = Math.min(gs - 1, Math.max(0, X - gl));
        const o = Y * W + X;
        const share = Math.min(weight[o], 1.0);
        const denom = Math.max(weight[o], 1e-12);
        for (let c = 0; c < C; c += 1) {
          out[o * C + c] = f32(f32(f32(share * total[o * C + c]) / f32(denom)) + f32(f32(1 - share) * base[(by * gs + bx) * C + c]));
        }
      }
    }
    return image(out, W, H, C);
  }

  return { DEFAULTS, ImageTooSmall, fromManifest, scaleFor, plan, tile, stitch, pyRound };
});
