// The playground page: the form's options -> the thumbor path (ThumborSign, in sign.js), shown
// as it is typed; "Render" loads the original from its own URL and the result through
// /playground/render/<path> on this listener, and shows their sizes, bytes, format and time.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let resultUrl = null; // the blob: URL of the result shown, revoked when replaced
  let generation = 0; // renders started; a late answer of an older one is dropped

  function integer(id, label, min) {
    const text = $(id).value.trim();
    if (text === "") return 0;
    if (!/^-?\d+$/.test(text)) throw new Error(`${label} must be an integer`);
    const n = Number(text);
    if (min !== undefined && n < min) throw new Error(`${label} must be at least ${min}`);
    return n;
  }

  function options() {
    let filters = $("filters").value.trim();
    if (filters.startsWith("filters:")) filters = filters.slice("filters:".length);
    return {
      image: $("image").value.trim(),
      width: integer("width", "the width"),
      height: integer("height", "the height"),
      fit: $("fit").value,
      flipH: $("flip-h").checked,
      flipV: $("flip-v").checked,
      halign: $("halign").value,
      valign: $("valign").value,
      smart: $("smart").checked,
      trim: $("trim").checked,
      crop: {
        left: integer("crop-left", "the crop's left", 0),
        top: integer("crop-top", "the crop's top", 0),
        right: integer("crop-right", "the crop's right", 0),
        bottom: integer("crop-bottom", "the crop's bottom", 0),
      },
      filters,
      meta: $("meta").checked,
    };
  }

  // The thumbor path for the form as it is, or null (the reason shown) when it has none.
  function update() {
    try {
      const path = ThumborSign.thumborPath(options(), $("key").value);
      $("path").textContent = path;
      $("url-error").textContent = "";
      return path;
    } catch (e) {
      $("path").textContent = "";
      $("url-error").textContent = e.message;
      return null;
    }
  }

  // The render path of a thumbor path; "?" and "#" (possible in filters) must stay in the path.
  function renderUrl(path) {
    return "/playground/render" + path.replace(/\?/g, "%3F").replace(/#/g, "%23");
  }

  function bytes(n) {
    return n < 1024 ? `${n} B` : `${n} B (${(n / 1024).toFixed(1)} KiB)`;
  }

  function loadImage(img, src) {
    return new Promise((resolve, reject) => {
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("not an image the browser can show"));
      img.src = src;
    });
  }

  function showOriginal(o, key, run) {
    const figure = $("original");
    const img = $("original-img");
    figure.dataset.state = "loading";
    $("original-size").textContent = "…";
    $("original-note").textContent = "";
    // thumbor reads an image URL without a scheme as http://.
    const direct = /^[a-z][a-z0-9+.-]*:\/\//i.test(o.image) ? o.image : "http://" + o.image;
    const shown = () => {
      if (run !== generation) return;
      $("original-size").textContent = `${img.naturalWidth} × ${img.naturalHeight} px`;
      figure.dataset.state = "done";
    };
    loadImage(img, direct)
      .then(shown)
      .catch(() => {
        if (run !== generation) return;
        // Not reachable from this browser (a private origin, the file loader): through Thumbora
        // with no operation instead, which re-encodes it.
        const plain = { ...o, width: 0, height: 0, fit: "", flipH: false, flipV: false, halign: "center",
          valign: "middle", smart: false, trim: false, crop: { left: 0, top: 0, right: 0, bottom: 0 },
          filters: "", meta: false };
        $("original-note").textContent = "(through Thumbora, no operation: not reachable from this browser)";
        return loadImage(img, renderUrl(ThumborSign.thumborPath(plain, key))).then(shown);
      })
      .catch((e) => {
        if (run !== generation) return;
        img.removeAttribute("src");
        $("original-size").textContent = "–";
        $("original-note").textContent = `(${e.message})`;
        figure.dataset.state = "error";
      });
  }

  async function showResult(path, run) {
    const figure = $("result");
    const img = $("result-img");
    const text = $("result-text");
    figure.dataset.state = "loading";
    $("result-status").textContent = "loading…";
    for (const id of ["result-size", "result-bytes", "result-format", "result-time", "result-cache"]) {
      $(id).textContent = "…";
    }
    try {
      const started = performance.now();
      // The Accept a browser sends for an image, so that format negotiation (auto_webp,
      // auto_avif) answers as it would for a page's <img>.
      const response = await fetch(renderUrl(path), {
        cache: "no-store",
        credentials: "omit",
        headers: { Accept: "image/avif,image/webp,image/apng,image/*,*/*;q=0.8" },
      });
      const blob = await response.blob();
      const elapsed = performance.now() - started;
      if (run !== generation) return;
      const type = response.headers.get("content-type") || "";
      $("result-status").textContent = `${response.status} ${response.statusText}`.trim();
      $("result-bytes").textContent = bytes(blob.size);
      $("result-format").textContent = type || "–";
      $("result-time").textContent = `${Math.round(elapsed)} ms`;
      $("result-cache").textContent = response.headers.get("x-cache") || "–";
      if (resultUrl) URL.revokeObjectURL(resultUrl);
      resultUrl = null;
      if (response.ok && type.startsWith("image/")) {
        text.hidden = true;
        resultUrl = URL.createObjectURL(blob);
        await loadImage(img, resultUrl);
        if (run !== generation) return;
        $("result-size").textContent = `${img.naturalWidth} × ${img.naturalHeight} px`;
      } else {
        img.removeAttribute("src");
        text.textContent = await blob.text();
        text.hidden = false;
        $("result-size").textContent = "–";
      }
      figure.dataset.state = response.ok ? "done" : "error";
    } catch (e) {
      if (run !== generation) return;
      img.removeAttribute("src");
      $("result-status").textContent = e.message;
      figure.dataset.state = "error";
    }
  }

  function render(event) {
    event.preventDefault();
    const path = update();
    if (path === null) return;
    const run = ++generation;
    const o = options();
    showOriginal(o, $("key").value, run);
    showResult(path, run);
  }

  $("form").addEventListener("input", update);
  $("form").addEventListener("change", update);
  $("form").addEventListener("submit", render);
  update();
})();
