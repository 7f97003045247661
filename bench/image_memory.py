"""Peak memory of opening large images: the previous path (Pillow ``open`` + ``convert``) vs ``open_image``.

Each case runs in a fresh child process and reports the growth of its peak resident set size
(``VmHWM`` after the case minus ``VmRSS`` before it), so the figures do not depend on what ran earlier:

* 12000x12000 PNG (144 Mpx, under Pillow's bomb limit) as a tool input: the previous
  ``Workspace.load_image`` decoded it fully; ``open_image`` refuses it from the header (25 Mpx limit).
* 6000x4000 JPEG (24 Mpx, under the limit) as an upload: the previous ``save_upload`` decoded it at
  full size and resized; ``open_image(fit=...)`` decodes it at 1/8 scale (``Image.draft``). Both
  uploads must give (nearly) the same 512x320 picture: the mean absolute pixel difference is printed.

    OMP_NUM_THREADS=1 .venv/bin/python bench/image_memory.py   # writes bench/results/image_memory.json

The test images are written once into bench/output/image_memory/ (git-ignored; reruns reuse them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "output" / "image_memory"  # git-ignored
OUT = HERE / "results" / "image_memory.json"

_CHILD = r"""
import json, sys
from PIL import Image
from g4t.tools.images import open_image, ImageError
from g4t.tools.workspace import fit_upload_size
case, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
def status(key):  # kB; VmHWM is this process's own peak (ru_maxrss would carry the parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
before = status("VmRSS")
result = "ok"
if case == "old_tool_input":
    with Image.open(path) as im:
        img = im.convert("RGB")
elif case == "new_tool_input":
    try:
        img = open_image(path)
    except ImageError as e:
        result = str(e)
        img = None
elif case == "old_upload":
    with Image.open(path) as im:
        img = im.convert("RGB")
    img = img.resize(fit_upload_size(*img.size), Image.Resampling.LANCZOS)
elif case == "new_upload":
    img = open_image(path, fit=lambda w, h: fit_upload_size(w, h))
peak = status("VmHWM") - before
if img is not None and case.endswith("upload"):
    img.save(out)
print(json.dumps({"case": case, "peak_growth_mb": round(peak / 1024, 1), "result": result[:160]}))
"""


def _make_images() -> tuple[Path, Path]:
    from PIL import Image

    DATA.mkdir(parents=True, exist_ok=True)
    png, jpg = DATA / "12000x12000.png", DATA / "6000x4000.jpg"
    if not png.exists():
        Image.new("RGB", (12000, 12000), (120, 60, 200)).save(png.with_suffix(".tmp.png"))
        png.with_suffix(".tmp.png").rename(png)
    if not jpg.exists():
        import numpy as np

        y, x = np.mgrid[0:4000, 0:6000]
        rgb = np.stack([(x * 255 // 6000), (y * 255 // 4000), ((x + y) % 256)], -1).astype(np.uint8)
        Image.fromarray(rgb).save(jpg.with_suffix(".tmp.jpg"), quality=90)
        jpg.with_suffix(".tmp.jpg").rename(jpg)
    return png, jpg


def main() -> None:
    import numpy as np
    from PIL import Image

    png, jpg = _make_images()
    rows = []
    for case, path in (
        ("old_tool_input", png),
        ("new_tool_input", png),
        ("old_upload", jpg),
        ("new_upload", jpg),
    ):
        out = DATA / f"{case}.png"
        r = subprocess.run([sys.executable, "-c", _CHILD, case, str(path), str(out)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{case} failed:\n{r.stderr[-2000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    with Image.open(DATA / "old_upload.png") as a, Image.open(DATA / "new_upload.png") as b:
        diff = float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())
        sizes = (a.size, b.size)
    figures = {r["case"]: r["peak_growth_mb"] for r in rows}
    summary = {
        "cases": rows,
        "upload_sizes": sizes,
        "upload_mean_abs_pixel_diff": round(diff, 2),
        "tool_input_peak_ratio_old_over_new": round(figures["old_tool_input"] / max(figures["new_tool_input"], 0.1), 1),
        "upload_peak_ratio_old_over_new": round(figures["old_upload"] / max(figures["new_upload"], 0.1), 1),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "cases"}))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(OUT)


if __name__ == "__main__":
    main()
