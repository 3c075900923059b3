"""Screenshot a page of the built book with headless Chromium (Debian's `chromium` package).

Usage: python scripts/screenshot.py [--page book/chapters/scoreboard.html] [--out _build/scoreboard.png]

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", default="book/chapters/scoreboard.html")
    ap.add_argument("--out", default=str(ROOT / "_build" / "scoreboard.png"))
    ap.add_argument("--size", default="1400,2400")
    a = ap.parse_args(argv)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("chromium not found: install it with `apt-get install chromium`", file=sys.stderr)
        return 2
    page = ROOT / "_build" / "html" / a.page
    if not page.exists():
        print(f"{page} not found: build the book first (`asdstudy book`)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={a.size}", f"--screenshot={a.out}",
               page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not Path(a.out).exists():
        print(proc.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"screenshot of {page.name}: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
