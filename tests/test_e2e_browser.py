"""End to end in a real browser: `streamlit run app.py`, headless Chromium with a fake camera.

The camera streams a real photo of a can from ../shared/data; the test takes the photo on the Classify
page and reads the prediction, then visits every page. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = {"": "Trashure", "dataset": "Dataset", "train": "Train", "results": "Results", "classify": "Classify",
         "export": "Export"}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or shutil.which("ffmpeg") is None,
    reason="needs Debian's chromium and ffmpeg (apt-get install chromium ffmpeg; .ci/run installs them)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_photo(shared: Path) -> Path:
    """The first demo-tier can photo of the manifest."""
    with open(shared / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["class"] == "can" and r["tier"] == "demo"]
    return shared / rows[0]["file"]


def fake_camera_stream(photo: Path, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(photo), "-t", "3",
                    "-vf", "scale=640:480,format=yuv420p", "-r", "10", "-f", "yuv4mpegpipe", str(out)],
                   check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_data):
    port = free_port()
    state = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "TRASHURE_RUNS": str(state / "runs"), "TRASHURE_DATA": str(shared_data)}
    env.pop("TRASHURE_MODEL", None)
    log = open(state / "streamlit.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start: {(state / 'streamlit.log').read_text()[-2000:]}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, shared_data):
    from playwright.sync_api import sync_playwright

    stream = fake_camera_stream(can_photo(shared_data), tmp_path_factory.mktemp("cam") / "can.y4m")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={stream}"])
        yield browser
        browser.close()


def new_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["camera"], origin=url)
    return context.new_page()


def settle(page) -> None:
    """Wait until the script has run: our navigation is in the sidebar and nothing is running or stale."""
    page.wait_for_selector('[data-testid="stSidebarNav"] >> text=Classify', timeout=60_000)
    page.wait_for_selector('[data-testid="stSidebar"] >> text=Trashure studio', timeout=60_000)
    page.wait_for_function(
        "() => { const w = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        " return (!w || !w.innerText.includes('Running')) && !document.querySelector('[data-stale=\"true\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]'); }",
        timeout=120_000)
    # Plotly draws after the script has run: wait until every chart has its SVG.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
        ".every(c => c.querySelector('svg.main-svg'))", timeout=60_000)
    page.wait_for_timeout(1000)


def test_camera_photo_of_a_can_is_classified_as_can(server, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for(timeout=60_000)
    page.wait_for_timeout(2000)  # let the fake stream start
    take.click()
    metric = page.locator('[data-testid="stMetric"]', has_text="Prediction")
    metric.wait_for(timeout=120_000)
    value = metric.locator('[data-testid="stMetricValue"]').inner_text()
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "classify.png"), full_page=True)
    assert value.strip() == "can"
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_without_an_exception(server, browser, path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, server)
    page.goto(f"{server}/{path}")
    settle(page)
    page.locator("h1").first.wait_for(timeout=60_000)
    assert PAGES[path] in page.locator("h1").first.inner_text()
    if path == "dataset":  # the real photos are all checked and counted
        page.locator('[data-testid="stMetric"]', has_text="Readable photos").wait_for(timeout=60_000)
        assert "1875" in page.locator('[data-testid="stMetric"]', has_text="Readable photos").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"page-{path or 'home'}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_upload_above_the_limit_is_refused_with_a_message(server, browser, tmp_path):
    """.streamlit/config.toml caps uploads at 25 MB; the browser refuses a bigger photo with a message."""
    big = tmp_path / "huge_photo.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(26 * 1024 * 1024))
    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    page.get_by_role("tab", name="Upload").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(big))
    page.get_by_text("must be 25.0MB or smaller", exact=False).wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "upload-too-large.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stMetric"]', has_text="Prediction").count() == 0
