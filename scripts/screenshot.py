"""Screenshots of the built book with headless Chromium (Debian's `chromium` package).

Usage:
    python scripts/screenshot.py                      # every chapter, 1400 px wide
    python scripts/screenshot.py --page book/chapters/scoreboard.html --height 2400

Each page is shot at 1400 px width and ``--height`` px (tall enough for the whole chapter by
default) and cut into tiles of ``--tile`` px, written to ``_build/screenshots/<page>-<k>.png``.
Install Chromium first (`apt-get install chromium`). The flags keep Chromium off the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ("data", "metrics", "autoencoders", "sequence", "gans", "ensemble", "explain", "scale", "scoreboard")


def shoot(exe: str, page: Path, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               "--disable-quic", f"--user-data-dir={profile}", f"--window-size={width},{height}",
               "--virtual-time-budget=5000", f"--screenshot={out}", page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium failed on {page}: {proc.stderr[-2000:]}")


def trim_and_tile(path: Path, tile: int) -> list[Path]:
    """Cut the blank bottom off a tall shot and split it into tiles."""
    from PIL import Image, ImageChops

    img = Image.open(path).convert("RGB")
    # the article column only: the sidebars' borders run the full height of the window
    # and not the footer, which sits at the bottom of the (tall) window
    article = img.crop((img.width // 5, 0, img.width * 4 // 5, img.height - 150))
    bg = Image.new("RGB", article.size, article.getpixel((article.width - 1, article.height - 1)))
    box = ImageChops.difference(article, bg).getbbox()
    if box:
        img = img.crop((0, 0, img.width, min(img.height, box[3] + 40)))
    out = []
    for k, top in enumerate(range(0, img.height, tile)):
        p = path.with_name(f"{path.stem}-{k + 1}.png")
        img.crop((0, top, img.width, min(img.height, top + tile))).save(p)
        out.append(p)
    path.unlink()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", action="append", help="page under _build/html (repeat); default every chapter")
    ap.add_argument("--out", default=str(ROOT / "_build" / "screenshots"))
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=16000)
    ap.add_argument("--tile", type=int, default=2000)
    a = ap.parse_args(argv)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("chromium not found: install it with `apt-get install chromium`", file=sys.stderr)
        return 2
    pages = a.page or [f"book/chapters/{c}.html" for c in CHAPTERS]
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for rel in pages:
        page = ROOT / "_build" / "html" / rel
        if not page.exists():
            print(f"{page} not found: build the book first (`asdstudy book`)", file=sys.stderr)
            return 2
        shot = out_dir / f"{Path(rel).stem}.png"
        shoot(exe, page, shot, a.width, a.height)
        tiles = trim_and_tile(shot, a.tile)
        print(f"{page.name}: {len(tiles)} tile(s) in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
