"""Screenshots of the explorer's page, at a desktop's 1280x800 and a phone's 390x844.

    python tools/explorer_screenshots.py                  # -> docs/images/explorer-*.png

Serves the bundled demo (as ``explore.py serve`` does) and opens one state in headless Chromium.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlss_jax.app.paths import REPO

STATE = "c=4,7,2&s=11,5,3&z=1&p=1,0.7,0.6&e=pca1:1.5&bc=1,3,6&bs=2,2,2&bz=9&t=0.3&il=all"
VIEWS = {"explorer-1280x800.png": (1280, 800, False, 1.0),
         "explorer-390x844.png": (390, 844, True, 2.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images",
                        help="folder for the PNGs (docs/images)")
    parser.add_argument("--state", default=STATE, help="the page's URL query to show")
    args = parser.parse_args(argv)

    from mlss_jax.app.browser import Chromium
    from mlss_jax.app.serve import BackgroundServer, create_app, load_explorer

    explorer = load_explorer(None, None)
    explorer.warm_up()
    args.out.mkdir(parents=True, exist_ok=True)
    with BackgroundServer(create_app(explorer)) as url, Chromium() as browser:
        for name, (width, height, mobile, scale) in VIEWS.items():
            browser.viewport(width, height, mobile, scale)
            browser.navigate(f"{url}/?{args.state}")
            browser.wait_for("window.explorerStats && window.explorerStats.framesDrawn >= 1 && "
                             "Object.keys(window.explorerStats.thumbsDrawn).length === 3", 60)
            time.sleep(1.0)  # the readouts
            print(f"wrote {browser.screenshot(args.out / name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
