"""Click -> verdict on screen, in headless Chromium, for the camera and for an upload, side by side in one
run: the first verdict after the server starts (cold: the model loads) and the median of the next ones.

    python bench/browser_latency.py [--repeats 5]

Needs Debian's chromium and ffmpeg and ../shared/data/trashnet4. Each timing starts at the click (or the
file being given to the upload control) and ends when the verdict for that input is on screen.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser_kit import MISSING, chromium, fake_camera_stream, new_page, settle, streamlit_server  # noqa: E402

from trashure.config import REPO_ROOT  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data" / "trashnet4"


def demo_photos() -> list[Path]:
    with open(SHARED / "manifest.csv", newline="") as f:
        return [SHARED / r["file"] for r in csv.DictReader(f) if r["tier"] == "demo"]


def camera_once(page) -> float:
    """Seconds from clicking Take Photo to the camera photo's verdict."""
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    start = time.perf_counter()
    take.click()
    page.locator('[data-testid="stMetric"]', has_text="Prediction").wait_for(timeout=120_000)
    page.get_by_text("Classifying your camera photo").wait_for(timeout=120_000)
    seconds = time.perf_counter() - start
    page.get_by_role("button", name="Clear photo").click()
    page.get_by_role("button", name="Take Photo").wait_for(timeout=60_000)
    return seconds


def upload_once(page, photo: Path) -> float:
    """Seconds from giving the file to the upload control to its verdict."""
    page.get_by_role("tab", name="Upload").click()
    # The control takes several files (a batch): remove the last upload so that this one is classified alone.
    delete = page.locator('[data-testid="stFileChipDeleteBtn"] button')
    while delete.count():
        delete.first.click()
        page.wait_for_timeout(300)
    page.get_by_text("Take a photo with the camera, upload one").wait_for(timeout=60_000)
    start = time.perf_counter()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.get_by_text(f"Classifying your upload {photo.name}").wait_for(timeout=120_000)
    page.locator('[data-testid="stMetric"]', has_text="Prediction").wait_for(timeout=120_000)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if MISSING or not SHARED.is_dir():
        print(MISSING or f"needs {SHARED}", file=sys.stderr)
        return 2
    photos = demo_photos()
    rows: dict[str, list[float]] = {"camera": [], "upload": []}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        stream = fake_camera_stream(photos[0], state / "cam.y4m")
        env = {"TRASHURE_RUNS": str(state / "runs"), "TRASHURE_DATA": str(SHARED), "TRASHURE_MODEL": ""}
        for kind in rows:  # a fresh server for each, so each has its own cold first verdict
            with streamlit_server(state, env) as url, chromium(stream) as browser:
                page = new_page(browser, url)
                page.goto(f"{url}/classify")
                settle(page)
                for i in range(args.repeats + 1):
                    rows[kind].append(camera_once(page) if kind == "camera" else upload_once(page, photos[1 + i]))
    print("| input | first verdict after start (s) | next verdicts, median (s) | max (s) |")
    print("|---|---:|---:|---:|")
    for kind, times in rows.items():
        print(f"| {kind} | {times[0]:.2f} | {statistics.median(times[1:]):.2f} | {max(times[1:]):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
