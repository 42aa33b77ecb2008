"""Peak memory of decoding one photo, per format: the bytes per pixel behind photos._DECODER_BYTES. Each format is
decoded in a fresh interpreter (VmHWM is a high-water mark) with the decoder's own limits lifted, so the figure
is the decoder's, not the refusal's. Prints one line per format, the median of `--runs`; not a test.

    python benchmarks/decode_memory.py [--side 4000] [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp", "HEIF": "heic"}

# VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's size at the fork.
CHILD = """
import sys
from pathlib import Path
from leafdoc.imaging import photos
def hwm():
    return next(int(x.split()[1]) for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM"))
photos.heif_support()
photos._DECODER_BYTES.clear()  # measure the decoder, not the refusal
data = Path(sys.argv[1]).read_bytes()
before = hwm()
photos.decode(data, sys.argv[1], max_pixels=10**9, min_side=320)
print((hwm() - before) * 1024)
"""


def photo(fmt: str, side: int) -> bytes:
    from PIL import Image

    from leafdoc.imaging.photos import heif_support

    if fmt == "HEIF" and not heif_support():
        return b""
    rng_img = Image.effect_noise((side, side), 40).convert("RGB")  # some texture: not a flat colour
    buf = io.BytesIO()
    rng_img.save(buf, fmt, **({"quality": 60} if fmt in ("JPEG", "WEBP", "HEIF") else {}))
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    pixels = opts.side**2
    print(f"{opts.side}x{opts.side} ({pixels / 1e6:.0f} MP), decoded at min_side=320, median of {opts.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, ext in FORMATS.items():
            data = photo(fmt, opts.side)
            if not data:
                print(f"{fmt:5s} skipped (pillow-heif is not installed)")
                continue
            path = Path(tmp) / f"photo.{ext}"
            path.write_bytes(data)
            peaks = [
                int(subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True).stdout)
                for _ in range(opts.runs)
            ]
            peak = statistics.median(peaks)
            print(f"{fmt:5s} {len(data) / 1e6:7.2f} MB file  peak +{peak / 2**20:6.0f} MiB  {peak / pixels:5.1f} B/px")


if __name__ == "__main__":
    main()
