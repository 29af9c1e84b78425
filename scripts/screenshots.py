#!/usr/bin/env python3
"""Screenshots of the lobby screen and the hosts' view for the README: `scripts/screenshots.py`.

Starts the real API for the bundled Work 2.0 Lab site on a free loopback port, feeds it a fixed demo
picture (tests/browser_support.py: desks free, in use and without data, a room over capacity, a
sensor offline, a gateway falling behind), and saves, with Debian's headless Chromium:

    docs/screenshots/lobby-1080p.png   1920×1080, English (?lang=en)
    docs/screenshots/lobby-phone.png   390×844, the whole page (it scrolls on a phone)
    docs/screenshots/host-1080p.png    1920×1080, after entering the host token
    docs/screenshots/host-phone.png    390×844, the first screen

Needs the test extras (`pip install -e ".[test]"`, as scripts/test does) and Debian's chromium.
`--out DIR` writes elsewhere; `--lang fi|sv|en` picks the lobby's language.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import HOST_TOKEN, LabServer, demo_state, launch_chromium  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

SIZES = {"1080p": (1920, 1080), "phone": (390, 844)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", choices=["fi", "sv", "en"], default="en")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, LabServer(Path(tmp)) as server, sync_playwright() as pw:
        demo_state(server)
        browser = launch_chromium(pw)
        for size, (width, height) in SIZES.items():
            # Phones draw at 3 device pixels per CSS pixel; 2 keeps the file small and still sharp.
            scale = 2 if size == "phone" else 1
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
            page.goto(f"{server.base}/lobby?lang={args.lang}")
            page.wait_for_selector("#plan [data-space]")
            page.wait_for_timeout(300)  # the clock and the fitted labels settle
            page.screenshot(path=str(args.out / f"lobby-{size}.png"), full_page=size == "phone")

            page.goto(f"{server.base}/host")
            page.fill("#token", HOST_TOKEN)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#sensors tbody tr")
            page.wait_for_timeout(300)
            page.screenshot(path=str(args.out / f"host-{size}.png"))
            page.close()
        browser.close()
    for f in sorted(args.out.glob("*.png")):
        print(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
