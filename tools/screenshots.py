"""Refresh the README's page pictures (docs/screenshots/<page>.png, 1400x1000) from the running dashboard.

    python tools/screenshots.py [--data ../shared/data/trashnet4] [--out docs/screenshots] [--pages home,train,...]

Starts `streamlit run app.py` with an empty runs folder, opens each page in Debian's Chromium (the same helpers
as the end-to-end tests) and saves what a 1400x1000 window shows once the page has settled. classify.png and
classify-why.png come from the flows of tests/test_e2e_browser.py: run it with TRASHURE_ARTIFACTS=folder and copy
those two from the folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from browser_kit import MISSING, chromium, fake_camera_stream, new_page, settle, streamlit_server  # noqa: E402

PAGES = {"home": "", "train": "train", "results": "results", "explore": "explore", "dataset": "dataset",
         "export": "export"}
# Pages that draw charts after their script has run (Explore first computes every photo's features: minutes
# on a cold cache): wait for the first chart's SVG before the picture.
CHARTS = {"results", "explore"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "trashnet4")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--pages", default="home,train,results,explore")
    args = parser.parse_args()
    if MISSING:
        print(MISSING, file=sys.stderr)
        return 2
    if not args.data.is_dir():
        print(f"no photos at {args.data}", file=sys.stderr)
        return 2
    names = args.pages.split(",")
    unknown = [n for n in names if n not in PAGES]
    if unknown:
        print(f"unknown page(s): {', '.join(unknown)}; pages: {', '.join(PAGES)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        env = {"TRASHURE_RUNS": str(state / "runs"), "TRASHURE_DATA": str(args.data.resolve()), "TRASHURE_MODEL": ""}
        photo = min(args.data.rglob("*.jpg"), default=None)  # the Camera tab's fake stream
        if photo is None:
            print(f"no .jpg photo under {args.data} for the fake camera", file=sys.stderr)
            return 2
        with streamlit_server(state, env) as url, chromium(fake_camera_stream(photo, state / "cam.y4m")) as browser:
            for name in names:
                page = new_page(browser, url)
                page.goto(f"{url}/{PAGES[name]}")
                settle(page)
                if name in CHARTS:
                    page.wait_for_selector('[data-testid="stPlotlyChart"] svg.main-svg', timeout=900_000)
                    settle(page)
                    page.wait_for_timeout(3000)
                page.screenshot(path=str(args.out / f"{name}.png"))
                print(f"{name}: {args.out / f'{name}.png'}")
                page.context.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
