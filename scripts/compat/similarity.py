"""Pixel similarity to thumbor 7.8 of Thumbora's results, per `image.jpeg_shrink_margin` value.

    /opt/thumbor-venv/bin/python scripts/compat/similarity.py SRC_DIR a.jpg,b.jpg 1,2

Serves SRC_DIR on 127.0.0.1 (http.server), starts thumbor (THUMBOR, default
/opt/thumbor-venv/bin/thumbor; QUALITY 95) and one Thumbora (THUMBORA, default
target/release/thumbora; cache off, quality 95, orientation ignored as thumbor) per margin, asks
each for the same crops and fits of every file, and prints the PSNR of each Thumbora result
against thumbor's, then the mean and minimum per margin. Needs Pillow (thumbor's venv has it).
"""
import io, json, math, os, socket, subprocess, sys, time, urllib.request
from PIL import Image, ImageChops, ImageStat

SRC = sys.argv[1]
THUMBOR = os.environ.get("THUMBOR", "/opt/thumbor-venv/bin/thumbor")
THUMBORA = os.environ.get("THUMBORA", "target/release/thumbora")
WORK = __import__("tempfile").mkdtemp(prefix="similarity-")
files = sys.argv[2].split(",")
sizes = ["300x200", "150x150", "200x300", "640x360", "100x100", "fit-in/300x200", "480x0", "0x240"]

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

procs = []
op = port()
procs.append(subprocess.Popen([sys.executable, "-m", "http.server", str(op), "--bind", "127.0.0.1", "-d", SRC], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
tp = port()
open(f"{WORK}/thumbor.conf", "w").write("ALLOW_UNSAFE_URL = True\nLOADER = 'thumbor.loaders.http_loader'\nSTORAGE = 'thumbor.storages.no_storage'\nRESULT_STORAGE = None\nQUALITY = 95\n")
procs.append(subprocess.Popen([THUMBOR, "-p", str(tp), "-c", f"{WORK}/thumbor.conf", "-l", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
ports = {}
for margin in sys.argv[3].split(","):
    p = port()
    conf = f"{WORK}/t{margin}.yaml"
    open(conf, "w").write(f"""pid_file: {WORK}/t{margin}.pid
upgrade_sock: {WORK}/t{margin}.sock
thumbora:
  listen: ["127.0.0.1:{p}"]
  sources: {{loader: http, allowed: ["127.0.0.1"]}}
  image: {{jpeg_shrink_margin: {margin}, quality: 95, respect_orientation: false}}
  cache: {{enabled: false}}
  access_log: {{enabled: false}}
""")
    procs.append(subprocess.Popen([THUMBORA, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    ports[margin] = p

def get(p, path):
    for _ in range(100):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{p}{path}", timeout=30).read()
        except Exception as e:
            err = e; time.sleep(0.2)
    raise err

def psnr(a, b):
    if a.size != b.size: return float("nan")
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / 3
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)

try:
    results = {m: [] for m in ports}
    for f in files:
        for size in sizes:
            path = f"/unsafe/{size}/127.0.0.1:{op}/{f}"
            ref = Image.open(io.BytesIO(get(tp, path)))
            line = [f, size]
            for m, p in ports.items():
                img = Image.open(io.BytesIO(get(p, path)))
                v = psnr(ref, img); results[m].append(v); line.append(f"m{m}={v:.2f}")
            print(" ".join(line), flush=True)
    for m, vals in results.items():
        vals = [v for v in vals if not math.isnan(v)]
        print(f"margin {m}: mean PSNR vs thumbor {sum(vals)/len(vals):.2f} dB, min {min(vals):.2f} over {len(vals)}")
finally:
    for p in procs: p.kill()
