// thumbor URLs composed and signed in the browser, as `thumbora sign` (src/cli/sign.rs) and
// libthumbor's CryptoURL.generate write them: segments in libthumbor's order, the image URL
// percent-encoded as Python's urllib.parse.quote (safe "/"), the signature the URL-safe base64
// (with padding) of HMAC-SHA1(key, path). SHA-1 is written out here because crypto.subtle only
// exists in secure contexts, and the admin listener is usually plain HTTP.
"use strict";

var ThumborSign = (function () {
  const utf8 = new TextEncoder();

  function rotl(x, n) {
    return (x << n) | (x >>> (32 - n));
  }

  // SHA-1 (FIPS 180-4) of a Uint8Array: 20 bytes.
  function sha1(bytes) {
    const blocks = (bytes.length + 9 + 63) >>> 6;
    const buf = new Uint8Array(blocks * 64);
    buf.set(bytes);
    buf[bytes.length] = 0x80;
    const view = new DataView(buf.buffer);
    view.setUint32(buf.length - 8, Math.floor(bytes.length / 0x20000000));
    view.setUint32(buf.length - 4, (bytes.length * 8) >>> 0);
    const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
    const w = new Uint32Array(80);
    for (let block = 0; block < blocks; block++) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(block * 64 + i * 4);
      for (let i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
      let [a, b, c, d, e] = h;
      for (let i = 0; i < 80; i++) {
        let f, k;
        if (i < 20) [f, k] = [(b & c) | (~b & d), 0x5a827999];
        else if (i < 40) [f, k] = [b ^ c ^ d, 0x6ed9eba1];
        else if (i < 60) [f, k] = [(b & c) | (b & d) | (c & d), 0x8f1bbcdc];
        else [f, k] = [b ^ c ^ d, 0xca62c1d6];
        const t = (rotl(a, 5) + f + e + k + w[i]) >>> 0;
        [e, d, c, b, a] = [d, c, rotl(b, 30) >>> 0, a, t];
      }
      h[0] = (h[0] + a) >>> 0;
      h[1] = (h[1] + b) >>> 0;
      h[2] = (h[2] + c) >>> 0;
      h[3] = (h[3] + d) >>> 0;
      h[4] = (h[4] + e) >>> 0;
    }
    const out = new Uint8Array(20);
    const outView = new DataView(out.buffer);
    h.forEach((word, i) => outView.setUint32(i * 4, word));
    return out;
  }

  function concat(a, b) {
    const out = new Uint8Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  }

  // HMAC-SHA1 (RFC 2104) of two Uint8Arrays.
  function hmacSha1(key, message) {
    if (key.length > 64) key = sha1(key);
    const inner = new Uint8Array(64);
    const outer = new Uint8Array(64);
    for (let i = 0; i < 64; i++) {
      const k = i < key.length ? key[i] : 0;
      inner[i] = k ^ 0x36;
      outer[i] = k ^ 0x5c;
    }
    return sha1(concat(outer, sha1(concat(inner, message))));
  }

  // Python's base64.urlsafe_b64encode: "-" and "_", "=" padding kept.
  function base64url(bytes) {
    let binary = "";
    bytes.forEach((b) => (binary += String.fromCharCode(b)));
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_");
  }

  // Python's urllib.parse.quote(text, safe="/"): UTF-8, unreserved characters and "/" kept.
  function pythonQuote(text) {
    let out = "";
    for (const b of utf8.encode(text)) {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9_.\-~\/]/.test(c)) out += c;
      else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
    }
    return out;
  }

  // The path that is signed, from the page's options (see `unsigned_path` in src/cli/sign.rs):
  // { image, width, height, fit ("" or "[adaptive-][full-]fit-in"), flipH, flipV, halign,
  //   valign, smart, trim, crop: {left, top, right, bottom}, filters, meta }.
  function unsignedPath(o) {
    if (!o.image) throw new Error("the image URL is required");
    if (o.fit && o.width === 0 && o.height === 0) {
      throw new Error(o.fit + " needs a width or a height");
    }
    const width = Math.abs(o.width);
    const height = Math.abs(o.height);
    // libthumbor: a flip negates its side; with both sides 0 a flip gives "-0"; a flipped 0
    // beside a non-zero side stays "0" (the flip is lost).
    let flipH = o.flipH;
    let flipV = o.flipV;
    if (width !== 0 || height !== 0) {
      flipH = o.width < 0 !== o.flipH && width !== 0;
      flipV = o.height < 0 !== o.flipV && height !== 0;
    }
    const parts = [];
    if (o.meta) parts.push("meta");
    if (o.trim) parts.push("trim");
    const c = o.crop;
    if (c.left > 0 || c.top > 0 || c.right > 0 || c.bottom > 0) {
      parts.push(`${c.left}x${c.top}:${c.right}x${c.bottom}`);
    }
    if (o.fit) parts.push(o.fit);
    if (width !== 0 || height !== 0 || flipH || flipV) {
      parts.push(`${flipH ? "-" : ""}${width}x${flipV ? "-" : ""}${height}`);
    }
    if (o.halign !== "center") parts.push(o.halign);
    if (o.valign !== "middle") parts.push(o.valign);
    if (o.smart) parts.push("smart");
    if (o.filters) parts.push("filters:" + o.filters);
    return parts.map((p) => p + "/").join("") + pythonQuote(o.image);
  }

  // "/<signature>/<path>" with a key, "/unsafe/<path>" without one.
  function thumborPath(o, key) {
    const path = unsignedPath(o);
    if (!key) return "/unsafe/" + path;
    return "/" + base64url(hmacSha1(utf8.encode(key), utf8.encode(path))) + "/" + path;
  }

  return { sha1, hmacSha1, base64url, pythonQuote, unsignedPath, thumborPath };
})();
