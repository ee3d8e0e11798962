"""Random thumbor URLs for a differential run against a real thumbor 7.8: each line combines
the grammar's parts in thumbor's order (meta, trim, crop, fit-in modes, sizes with flips, `orig`
and 0, alignments, smart, up to three filters with random arguments) over the fixture images,
signed or unsafe. The same seed gives the same lines.

    python3 scripts/compat/random_urls.py SEED COUNT > /tmp/urls.txt
    $THUMBOR_PY scripts/compat/record.py --urls /tmp/urls.txt --out /tmp/expected.json
    $THUMBOR_PY scripts/compat/compare.py --base http://127.0.0.1:8888 \
        --expected /tmp/expected.json --allow all

Whatever differs is either a new bug or a difference the README already lists (see there).
"""
import random, sys
seed, n = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
IMAGES = ["landscape.jpg", "portrait.jpg", "small.jpg", "wide.jpg", "rgba.png", "rgb.png", "palette.png",
          "gray.jpg", "gray.png", "cmyk.jpg", "progressive.jpg", "lossy.webp", "lossless_alpha.webp",
          "single.gif", "animated.gif", "orient6.jpg", "trim.png", "trim_br.png", "png16.png", "pixel.png",
          "image.bmp", "image.tiff", "text.jpg"]
def num(lo, hi):
    return str(r.randint(lo, hi))
def size():
    k = r.random()
    if k < 0.1: return ""
    def side():
        c = r.random()
        if c < 0.15: return ""
        if c < 0.22: return "0"
        if c < 0.27: return "orig"
        v = str(r.choice([1, 2, 10, 50, 100, 150, 200, 300, 333, 400, 599, 600, 800, 801, 1000, 1200]))
        return ("-" if r.random() < 0.15 else "") + v
    return f"{side()}x{side()}/"
def color():
    return r.choice(["red", "blue", "white", "black", "transparent", "auto", "blur", "ff0000", "00ff00aa", "abc", "FFF"])
FILTERS = [
    lambda: f"quality({num(1, 100)})",
    lambda: f"format({r.choice(['jpeg', 'png', 'webp', 'gif', 'JPG', 'jpg', 'avif'])})",
    lambda: f"fill({color()}{r.choice(['', ',1', ',true', ',0'])})",
    lambda: f"blur({num(0, 20)}{r.choice(['', ',' + num(0, 10)])})",
    lambda: f"brightness({num(-100, 100)})",
    lambda: f"contrast({num(-100, 100)})",
    lambda: f"saturation({r.choice(['0', '0.5', '1.5', '2', '-1'])})",
    lambda: f"rgb({num(-100, 100)},{num(-100, 100)},{num(-100, 100)})",
    lambda: f"rotate({r.choice([0, 90, 180, 270, 45, 360, 450, -90])})",
    lambda: f"round_corner({num(0, 80)}{r.choice(['', '|' + num(0, 80)])},{num(0, 255)},{num(0, 255)},{num(0, 255)}{r.choice(['', ',1', ',0'])})",
    lambda: "grayscale()",
    lambda: "equalize()",
    lambda: f"noise({num(0, 100)})",
    lambda: f"sharpen({r.choice(['0.5', '1', '2'])},{r.choice(['0.5', '1', '2'])},{r.choice(['true', 'false'])})",
    lambda: "upscale()",
    lambda: "no_upscale()",
    lambda: "stretch()",
    lambda: f"proportion({r.choice(['0.5', '0.1', '1', '1.5', '0.01'])})",
    lambda: f"max_bytes({r.choice([1000, 5000, 20000, 100000])})",
    lambda: f"background_color({color()})",
    lambda: "strip_exif()",
    lambda: "strip_icc()",
    lambda: "autojpg()",
    lambda: f"max_age({r.choice([0, 60, 3600])})",
    lambda: f"focal({num(0, 400)}x{num(0, 300)}:{num(100, 800)}x{num(100, 600)})",
    lambda: "extract_focal()",
    lambda: f"watermark({{origin}}/watermark.png,{r.choice(['0', '10', '-10', 'center', 'repeat', '50p'])},{r.choice(['0', '10', '-10', 'center', 'repeat', '50p'])},{num(0, 100)}{r.choice(['', ',20,20', ',50p,50p', ',none,30p'])})",
    lambda: f"convolution({r.choice(['1;2;1;2;4;2;1;2;1', '-1;-1;-1;-1;8;-1;-1;-1;-1', '1;1;1'])},{r.choice([3, 1])},{r.choice(['true', 'false'])})",
]
lines = []
for _ in range(n):
    parts = []
    if r.random() < 0.08: parts.append("meta/")
    if r.random() < 0.08: parts.append(r.choice(["trim/", "trim:bottom-right/", "trim:top-left:20/", "trim:50/"]))
    if r.random() < 0.15: parts.append(f"{num(0, 300)}x{num(0, 200)}:{num(100, 900)}x{num(100, 700)}/")
    if r.random() < 0.4: parts.append(r.choice(["fit-in/", "adaptive-fit-in/", "full-fit-in/", "adaptive-full-fit-in/"]))
    parts.append(size())
    if r.random() < 0.25: parts.append(r.choice(["left/", "right/", "center/"]))
    if r.random() < 0.25: parts.append(r.choice(["top/", "bottom/", "middle/"]))
    if r.random() < 0.15: parts.append("smart/")
    k = r.choice([0, 0, 1, 1, 1, 2, 3])
    if k:
        parts.append("filters:" + ":".join(r.choice(FILTERS)() for _ in range(k)) + "/")
    img = r.choice(IMAGES)
    path = "".join(parts) + "{origin}/" + img
    lines.append(("/{sign}/" if r.random() < 0.2 else "/unsafe/") + path)
print("\n".join(lines))
