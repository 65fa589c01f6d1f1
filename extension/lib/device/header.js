/*
 * An image's format and size from its header alone, so that the pixel limit is checked before a
 * byte is decoded (server/decode.py `probe`). The formats the server allows and a browser decodes:
 * JPEG, PNG, WebP, GIF, BMP. EXIF orientation swaps width and height but not the pixel count or the
 * short side, so the limits need no orientation here (createImageBitmap applies it when decoding).
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.GammaDetect.device.header = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  class HeaderError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  const u16be = (b, o) => (b[o] << 8) | b[o + 1];
  const u16le = (b, o) => b[o] | (b[o + 1] << 8);
  const u32be = (b, o) => ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
  const u32le = (b, o) => ((b[o + 3] << 24) >>> 0) + ((b[o + 2] << 16) | (b[o + 1] << 8) | b[o]);
  const ascii = (b, o, n) => String.fromCharCode.apply(null, b.subarray(o, o + n));

  function jpeg(b) {
    let o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) throw new HeaderError("image_decode_failed", "the JPEG file is corrupt (no marker)");
      const marker = b[o + 1];
      if (marker === 0xff) {
        o += 1;
        continue;
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
        o += 2;
        continue;
      }
      const length = u16be(b, o + 2);
      // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc)
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: u16be(b, o + 7), height: u16be(b, o + 5) };
      }
      if (marker === 0xda || marker === 0xd9) break;
      o += 2 + length;
    }
    throw new HeaderError("image_decode_failed", "the JPEG file is corrupt (no frame header)");
  }

  function webp(b) {
    const chunk = ascii(b, 12, 4);
    if (chunk === "VP8X") return { width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    if (chunk === "VP8L") {
      const bits = u32le(b, 21);
      return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
    }
    if (chunk === "VP8 ") return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    throw new HeaderError("image_decode_failed", "the WEBP file is corrupt");
  }

  const FORMATS = [
    ["JPEG", (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff, jpeg],
    ["PNG", (b) => ascii(b, 0, 8) === "\x89PNG\r\n\x1a\n", (b) => ({ width: u32be(b, 16), height: u32be(b, 20) })],
    ["WEBP", (b) => ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP", webp],
    ["GIF", (b) => ["GIF87a", "GIF89a"].includes(ascii(b, 0, 6)), (b) => ({ width: u16le(b, 6), height: u16le(b, 8) })],
    ["BMP", (b) => ascii(b, 0, 2) === "BM", (b) => ({ width: Math.abs(u32le(b, 18) | 0), height: Math.abs(u32le(b, 22) | 0) })],
  ];

  /** { format, width, height } or throws HeaderError with the server's error codes. */
  function probe(bytes, limits) {
    if (!bytes.length) throw new HeaderError("image_decode_failed", "the image is empty (zero bytes)");
    const found = FORMATS.find(([, matches]) => bytes.length >= 32 && matches(bytes));
    if (!found) throw new HeaderError("unsupported_media_type", "not an image in a supported format (" + FORMATS.map((f) => f[0]).join(", ") + ")");
    const [format, , read] = found;
    let size;
    try {
      size = read(bytes);
    } catch (err) {
      if (err instanceof HeaderError) throw err;
      throw new HeaderError("image_decode_failed", `the ${format} file is corrupt`);
    }
    const { width, height } = size;
    if (!(width > 0 && height > 0)) throw new HeaderError("image_decode_failed", `the ${format} file is corrupt (no size)`);
    if (width * height > limits.maxPixels) {
      throw new HeaderError("image_too_large", `the image is ${width}x${height}; at most ${limits.maxPixels} pixels are allowed`);
    }
    if (Math.min(width, height) < limits.minSide) {
      throw new HeaderError("image_too_small", `the image is ${width}x${height}; the short side must be at least ${limits.minSide} px`);
    }
    return { format, width, height };
  }

  return { probe, HeaderError };
});
