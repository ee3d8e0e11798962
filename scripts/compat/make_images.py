#!/usr/bin/env python3
"""Deterministic generator of the small fixture images used by the thumbor
conformance corpus.

Run with the thumbor venv's Python (it needs Pillow):

    /opt/thumbor-venv/bin/python scripts/compat/make_images.py

Writes into tests/fixtures/compat/images/ (relative to the repository root,
whatever the current directory is).  Everything is seeded, so re-running it
with the same Pillow version produces byte-identical files.  The whole
directory stays well under 600 KB.
"""

import io
import math
import os
import random
import sys

from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "compat", "images")

SEED = 20240607


def gradient(w, h, c0=(30, 60, 120), c1=(240, 180, 60), c2=(20, 140, 80)):
    """Smooth two-axis gradient, RGB."""
    img = Image.new("RGB", (w, h))
    px = []
    for y in range(h):
        fy = y / max(h - 1, 1)
        for x in range(w):
            fx = x / max(w - 1, 1)
            r = c0[0] * (1 - fx) + c1[0] * fx
            g = c0[1] * (1 - fy) + c2[1] * fy
            b = c0[2] * (1 - fx) * (1 - fy) + c1[2] * fx * fy + c2[2] * fy
            px.append((int(r) & 255, int(g) & 255, int(min(b, 255))))
    img.putdata(px)
    return img


def photo(w, h, seed):
    """Photo-like picture: gradient sky, a sun, some hills and blobs."""
    rnd = random.Random(seed)
    img = gradient(w, h)
    d = ImageDraw.Draw(img)
    # hills
    for i in range(3):
        base = int(h * (0.55 + 0.12 * i))
        pts = [(0, h)]
        for x in range(0, w + 40, 40):
            pts.append((x, base + int(25 * math.sin(x / (60.0 + 20 * i) + i))))
        pts.append((w, h))
        shade = 60 + 40 * i
        d.polygon(pts, fill=(shade // 2, shade, shade // 3))
    # sun
    r = min(w, h) // 10
    cx, cy = int(w * 0.75), int(h * 0.22)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 230, 120))
    # random shapes
    for _ in range(12):
        x0 = rnd.randrange(0, w)
        y0 = rnd.randrange(0, h)
        sw = rnd.randrange(10, max(11, w // 6))
        sh = rnd.randrange(10, max(11, h // 6))
        col = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        if rnd.random() < 0.5:
            d.rectangle((x0, y0, x0 + sw, y0 + sh), fill=col)
        else:
            d.ellipse((x0, y0, x0 + sw, y0 + sh), fill=col)
    # a marker in the top-left corner so orientation/flip is visible
    d.rectangle((0, 0, w // 8, h // 8), fill=(220, 20, 20))
    return img


def jpeg_bytes(img, **kw):
    buf = io.BytesIO()
    kw.setdefault("quality", 85)
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def save(name, img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return write(name, buf.getvalue())


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value  # Orientation
    return exif.tobytes()


def frames_rgb(w, h, n, seed):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        img = Image.new("RGB", (w, h), (40 * i, 80, 200 - 50 * i))
        d = ImageDraw.Draw(img)
        x = 10 + i * (w - 40) // max(n - 1, 1)
        d.ellipse((x, h // 4, x + 30, h // 4 + 30), fill=(255, 255, 0))
        d.rectangle((0, h - 10, w, h), fill=(rnd.randrange(256), 0, 0))
        out.append(img)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    # clean out stale files we own
    for fname in os.listdir(OUT):
        os.remove(os.path.join(OUT, fname))

    # --- JPEG family -------------------------------------------------------
    land = photo(800, 600, SEED)
    write("landscape.jpg", jpeg_bytes(land))
    write("portrait.jpg", jpeg_bytes(photo(600, 800, SEED + 1)))
    write("small.jpg", jpeg_bytes(photo(64, 48, SEED + 2)))
    write("gray.jpg", jpeg_bytes(photo(320, 240, SEED + 3).convert("L")))
    write("cmyk.jpg", jpeg_bytes(photo(320, 240, SEED + 4).convert("CMYK")))
    stored = photo(400, 300, SEED + 5)
    for o in (3, 6, 8):
        write(f"orient{o}.jpg", jpeg_bytes(stored, exif=exif_orientation(o)))
    write("progressive.jpg", jpeg_bytes(photo(400, 300, SEED + 6), progressive=True))
    write("wide.jpg", jpeg_bytes(photo(2000, 50, SEED + 7), quality=70))
    # truncated: first half of a valid JPEG
    half = jpeg_bytes(photo(400, 300, SEED + 8))
    write("truncated.jpg", half[: len(half) // 2])

    # --- PNG family --------------------------------------------------------
    rgba = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    d = ImageDraw.Draw(rgba)
    d.ellipse((20, 20, 280, 280), fill=(30, 120, 220, 255))
    d.rectangle((100, 100, 200, 200), fill=(250, 200, 0, 128))
    d.polygon([(150, 30), (270, 260), (30, 260)], outline=(255, 255, 255, 255))
    save("rgba.png", rgba, "PNG", optimize=True)
    # truncated: the first 60% of rgba.png (Pillow, with thumbor's LOAD_TRUNCATED_IMAGES, loads it)
    with open(os.path.join(OUT, "rgba.png"), "rb") as f:
        whole = f.read()
    write("truncated.png", whole[: len(whole) * 6 // 10])

    save("rgb.png", photo(400, 200, SEED + 9).quantize(64).convert("RGB"), "PNG", optimize=True)

    pal = Image.new("P", (200, 150), 0)
    pal.putpalette([c for i in range(256) for c in ((i * 7) & 255, (i * 3) & 255, 255 - i)])
    d = ImageDraw.Draw(pal)
    for i in range(10):
        d.rectangle((i * 20, 0, i * 20 + 19, 149), fill=i * 25)
    d.ellipse((50, 25, 150, 125), fill=200)
    save("palette.png", pal, "PNG", optimize=True)

    save("gray.png", gradient(200, 150).convert("L"), "PNG", optimize=True)

    g16 = Image.new("I;16", (200, 150))
    g16.putdata([(x * 300 + y * 20) & 0xFFFF for y in range(150) for x in range(200)])
    save("png16.png", g16, "PNG")

    save("pixel.png", Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")

    # watermark source (RGBA, small) and a nine-patch frame for frame()
    wm = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    d = ImageDraw.Draw(wm)
    d.rectangle((0, 0, 59, 39), outline=(255, 255, 255, 255), width=3)
    d.text((8, 12), "WM", fill=(255, 255, 255, 200))
    save("watermark.png", wm, "PNG", optimize=True)

    np_ = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    d = ImageDraw.Draw(np_)
    d.rectangle((1, 1, 30, 30), fill=(120, 60, 20, 255))
    d.rectangle((7, 7, 24, 24), fill=(0, 0, 0, 0))
    black = (0, 0, 0, 255)
    for i in range(12, 20):  # stretchy columns/rows (top and left edges)
        np_.putpixel((i, 0), black)
        np_.putpixel((0, i), black)
    for i in range(7, 25):  # content area (right and bottom edges)
        np_.putpixel((31, i), black)
        np_.putpixel((i, 31), black)
    save("ninepatch.png", np_, "PNG")

    # --- trim fixtures -----------------------------------------------------
    content = photo(300, 200, SEED + 10)
    trim = Image.new("RGB", (340, 240), (255, 255, 255))
    trim.paste(content, (20, 20))
    save("trim.png", trim, "PNG", optimize=True)
    trim_br = trim.copy()
    ImageDraw.Draw(trim_br).rectangle((330, 230, 339, 239), fill=(0, 0, 0))
    save("trim_br.png", trim_br, "PNG", optimize=True)
    # JPEG with a near-white noisy border: tolerance matters
    rnd = random.Random(SEED + 11)
    noisy = trim.copy()
    px = noisy.load()
    for y in range(240):
        for x in range(340):
            if x < 20 or x >= 320 or y < 20 or y >= 220:
                v = 255 - rnd.randrange(0, 12)
                px[x, y] = (v, v, v)
    write("trim_noisy.jpg", jpeg_bytes(noisy, quality=90))

    # --- GIF / WebP --------------------------------------------------------
    fr = frames_rgb(120, 80, 3, SEED + 12)
    buf = io.BytesIO()
    fr[0].save(buf, "GIF", save_all=True, append_images=fr[1:], duration=100, loop=0)
    write("animated.gif", buf.getvalue())
    save("single.gif", fr[0].quantize(32), "GIF")

    save("lossy.webp", photo(500, 400, SEED + 13), "WEBP", quality=75, method=4)
    save("lossless_alpha.webp", rgba.resize((150, 150)), "WEBP", lossless=True)
    try:
        buf = io.BytesIO()
        fr[0].save(buf, "WEBP", save_all=True, append_images=fr[1:], duration=100,
                   loop=0, quality=60)
        write("animated.webp", buf.getvalue())
    except Exception as exc:  # pragma: no cover - depends on libwebp build
        print("animated webp not written:", exc, file=sys.stderr)

    # --- other formats -----------------------------------------------------
    save("image.bmp", photo(120, 90, SEED + 14), "BMP")
    save("image.tiff", photo(120, 90, SEED + 15), "TIFF", compression="tiff_lzw")
    write("image.svg", (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" '
        b'viewBox="0 0 200 100">\n'
        b'  <rect width="200" height="100" fill="#3366cc"/>\n'
        b'  <circle cx="100" cy="50" r="40" fill="#ffcc00"/>\n'
        b'</svg>\n'))
    write("text.jpg", b"This is not an image, just text pretending to be a JPEG.\n" * 4)
    write("empty.jpg", b"")

    total = 0
    for fname in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, fname))
        total += size
        print(f"{size:8d}  {fname}")
    print(f"{total:8d}  total")
    if total > 600 * 1024:
        print("WARNING: fixture images exceed 600 KB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
