/*
 * OpenCV's cv2.resize as the Python side calls it (gamma_detect/crops.py `resize`: INTER_AREA when
 * the pixel count shrinks, INTER_LINEAR otherwise), ported so that the browser cuts the same views
 * and stitches the same maps. uint8 images and float32 maps, channels interleaved.
 *
 * - INTER_AREA, integer factor: 2x2 blocks as (sum + 2) >> 2 (OpenCV's fast path), other blocks
 *   sum * (1 / area) rounded; non-integer factor: OpenCV's area table with float32 weights and
 *   float32 sums, rounded half to even. Bit-exact against OpenCV 5 (test/resize.test.js).
 * - INTER_LINEAR: half-pixel centres, 11-bit fixed-point weights for uint8 (OpenCV's SIMD
 *   rounding), float32 for maps. uint8 differs from OpenCV by at most 1 on a few pixels (its
 *   SIMD lanes round a little differently; the test states how many).
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else ((root.GammaDetect = root.GammaDetect || {}).device = root.GammaDetect.device || {}).resize = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const f32 = Math.fround;

  /** Round half to even, as OpenCV's saturate_cast (lrint) does, then clamp to a byte. */
  function rint(v) {
    const r = Math.round(v);
    return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function toByte(v) {
    const r = rint(v);
    return r < 0 ? 0 : r > 255 ? 255 : r;
  }

  /** An image: { data: Uint8Array | Float32Array, width, height, channels }. */
  function image(data, width, height, channels) {
    return { data, width, height, channels };
  }

  /** crops.resize: the one resize of training and inference (area when shrinking, else linear). */
  function resize(src, width, height) {
    if (src.width === width && src.height === height) return src;
    const shrinking = width * height < src.width * src.height;
    if (shrinking && (width > src.width || height > src.height)) {
      // OpenCV's area resize enlarging one axis (its own coefficients): never asked by the crop policy, whose
      // views and working images keep the aspect ratio.
      throw new Error(`resize ${src.width}x${src.height} -> ${width}x${height}: one axis shrinks, the other grows`);
    }
    return shrinking ? resizeArea(src, width, height) : resizeLinear(src, width, height);
  }

  // ------------------------------------------------------------------ INTER_AREA

  /** OpenCV's computeResizeAreaTab: (destination index, source index, weight) triples, as typed arrays. */
  function areaTable(ssize, dsize, cn, scale) {
    const di = [];
    const si = [];
    const alpha = [];
    const push = (d, s, a) => {
      di.push(d);
      si.push(s);
      alpha.push(a);
    };
    for (let dx = 0; dx < dsize; dx += 1) {
      const fsx1 = dx * scale;
      const fsx2 = fsx1 + scale;
      const cellWidth = Math.min(scale, ssize - fsx1);
      let sx1 = Math.ceil(fsx1);
      let sx2 = Math.floor(fsx2);
      sx2 = Math.min(sx2, ssize - 1);
      sx1 = Math.min(sx1, sx2);
      if (sx1 - fsx1 > 1e-3) push(dx * cn, (sx1 - 1) * cn, (sx1 - fsx1) / cellWidth);
      for (let sx = sx1; sx < sx2; sx += 1) push(dx * cn, sx * cn, 1.0 / cellWidth);
      if (fsx2 - sx2 > 1e-3) push(dx * cn, sx2 * cn, Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth);
    }
    return { di: Int32Array.from(di), si: Int32Array.from(si), alpha: Float32Array.from(alpha), length: di.length };
  }

  function resizeArea(src, width, height) {
    const { width: sw, height: sh, channels: cn } = src;
    const scaleX = 1 / (width / sw);
    const scaleY = 1 / (height / sh);
    const ix = Math.round(scaleX);
    const iy = Math.round(scaleY);
    const fast = Math.abs(scaleX - ix) < Number.EPSILON && Math.abs(scaleY - iy) < Number.EPSILON;
    if (fast) return areaFast(src, width, height, ix, iy);
    const bytes = src.data instanceof Uint8Array;
    const out = bytes ? new Uint8Array(width * height * cn) : new Float32Array(width * height * cn);
    const xtab = areaTable(sw, width, cn, scaleX);
    const ytab = areaTable(sh, height, 1, scaleY);
    const rowLen = width * cn;
    const buf = new Float32Array(rowLen);
    const sum = new Float32Array(rowLen);
    const store = (dy) => {
      const base = dy * rowLen;
      for (let i = 0; i < rowLen; i += 1) out[base + i] = bytes ? toByte(sum[i]) : sum[i];
    };
    const S = src.data;
    let prev = ytab.di[0];
    let summed = -1; // the source row whose horizontal pass buf holds: a row split between two output rows is summed once
    for (let j = 0; j < ytab.length; j += 1) {
      const dy = ytab.di[j];
      const beta = ytab.alpha[j];
      const row = ytab.si[j] * sw * cn;
      // the product rounded to float32 as OpenCV's is; the Float32Array store rounds the sum
      const { di, si, alpha } = xtab;
      if (row === summed) {
        // the same source row as the last entry: its horizontal sums are in buf already
      } else if (cn === 3) {
        buf.fill(0);
        for (let k = 0; k < xtab.length; k += 1) {
          const d = di[k];
          const o = row + si[k];
          const a = alpha[k];
          buf[d] += f32(S[o] * a);
          buf[d + 1] += f32(S[o + 1] * a);
          buf[d + 2] += f32(S[o + 2] * a);
        }
      } else {
        buf.fill(0);
        for (let k = 0; k < xtab.length; k += 1) {
          for (let c = 0; c < cn; c += 1) buf[di[k] + c] += f32(S[row + si[k] + c] * alpha[k]);
        }
      }
      summed = row;
      if (dy !== prev) {
        store(prev);
        for (let i = 0; i < rowLen; i += 1) sum[i] = f32(beta * buf[i]);
        prev = dy;
      } else {
        for (let i = 0; i < rowLen; i += 1) sum[i] += f32(beta * buf[i]);
      }
    }
    store(prev);
    return image(out, width, height, cn);
  }

  function areaFast(src, width, height, ix, iy) {
    const { width: sw, channels: cn } = src;
    const bytes = src.data instanceof Uint8Array;
    const out = bytes ? new Uint8Array(width * height * cn) : new Float32Array(width * height * cn);
    const S = src.data;
    const scale = f32(1 / (ix * iy));
    if (bytes && ix === 2 && iy === 2) {
      // the common case (a large photo at half size): one pass over both source rows
      const rowLen = width * cn;
      for (let dy = 0; dy < height; dy += 1) {
        const r0 = 2 * dy * sw * cn;
        const r1 = r0 + sw * cn;
        const o = dy * rowLen;
        for (let dx = 0; dx < width; dx += 1) {
          const a = r0 + 2 * dx * cn;
          const b = r1 + 2 * dx * cn;
          for (let c = 0; c < cn; c += 1) out[o + dx * cn + c] = (S[a + c] + S[a + cn + c] + S[b + c] + S[b + cn + c] + 2) >> 2;
        }
      }
      return image(out, width, height, cn);
    }
    for (let dy = 0; dy < height; dy += 1) {
      for (let dx = 0; dx < width; dx += 1) {
        for (let c = 0; c < cn; c += 1) {
          let total = 0;
          for (let y = 0; y < iy; y += 1) {
            const row = (dy * iy + y) * sw;
            for (let x = 0; x < ix; x += 1) total = bytes ? total + S[(row + dx * ix + x) * cn + c] : f32(total + S[(row + dx * ix + x) * cn + c]);
          }
          const o = (dy * width + dx) * cn + c;
          if (!bytes) out[o] = f32(total * scale);
          else out[o] = toByte(f32(total * scale));
        }
      }
    }
    return image(out, width, height, cn);
  }

  // ------------------------------------------------------------------ INTER_LINEAR

  function linearTable(dsize, ssize) {
    const scale = 1 / (dsize / ssize);
    const ofs = new Int32Array(dsize);
    const alpha = new Float32Array(dsize);
    for (let d = 0; d < dsize; d += 1) {
      let fx = f32((d + 0.5) * scale - 0.5);
      let sx = Math.floor(fx);
      fx = f32(fx - sx);
      if (sx < 0) {
        fx = 0;
        sx = 0;
      }
      if (sx >= ssize - 1) {
        fx = 0;
        sx = ssize - 1;
      }
      ofs[d] = sx;
      alpha[d] = fx;
    }
    return { ofs, alpha };
  }

  function resizeLinear(src, width, height) {
    const { width: sw, height: sh, channels: cn } = src;
    const xt = linearTable(width, sw);
    const yt = linearTable(height, sh);
    const bytes = src.data instanceof Uint8Array;
    const S = src.data;
    const out = bytes ? new Uint8Array(width * height * cn) : new Float32Array(width * height * cn);
    const rowLen = width * cn;
    // Horizontal pass per source row (cached: consecutive output rows share source rows).
    const rows = new Map();
    const xa0 = new Int32Array(width);
    const xa1 = new Int32Array(width);
    for (let d = 0; d < width; d += 1) {
      xa0[d] = rint(f32(1 - xt.alpha[d]) * 2048);
      xa1[d] = rint(xt.alpha[d] * 2048);
    }
    function hrow(sy) {
      if (rows.has(sy)) return rows.get(sy);
      const row = bytes ? new Int32Array(rowLen) : new Float32Array(rowLen);
      const base = sy * sw * cn;
      for (let d = 0; d < width; d += 1) {
        const s0 = base + xt.ofs[d] * cn;
        const s1 = base + Math.min(xt.ofs[d] + 1, sw - 1) * cn;
        for (let c = 0; c < cn; c += 1) {
          row[d * cn + c] = bytes
            ? S[s0 + c] * xa0[d] + S[s1 + c] * xa1[d]
            : f32(f32(S[s0 + c] * f32(1 - xt.alpha[d])) + f32(S[s1 + c] * xt.alpha[d]));
        }
      }
      if (rows.size > 4) rows.delete(rows.keys().next().value);
      rows.set(sy, row);
      return row;
    }
    for (let dy = 0; dy < height; dy += 1) {
      const sy = yt.ofs[dy];
      const r0 = hrow(sy);
      const r1 = hrow(Math.min(sy + 1, sh - 1));
      const base = dy * rowLen;
      if (bytes) {
        const b0 = rint(f32(1 - yt.alpha[dy]) * 2048);
        const b1 = rint(yt.alpha[dy] * 2048);
        for (let i = 0; i < rowLen; i += 1) {
          const v = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2;
          out[base + i] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
      } else {
        const b0 = f32(1 - yt.alpha[dy]);
        const b1 = yt.alpha[dy];
        for (let i = 0; i < rowLen; i += 1) out[base + i] = f32(f32(r0[i] * b0) + f32(r1[i] * b1));
      }
    }
    return image(out, width, height, cn);
  }

  return { resize, resizeArea, resizeLinear, image };
});
