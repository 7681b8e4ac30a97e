"""The dashboard in a real browser: a Streamlit server and headless Debian Chromium with a fake camera.
Shared by the end-to-end tests and bench/browser_latency.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = ("needs Debian's chromium and ffmpeg (apt-get install chromium ffmpeg; .ci/run installs them)"
           if CHROMIUM is None or shutil.which("ffmpeg") is None else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_camera_stream(photo: Path, out: Path) -> Path:
    """A 3-second .y4m video of one photo, which Chromium streams as its camera."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(photo), "-t", "3",
                    "-vf", "scale=640:480,format=yuv420p", "-r", "10", "-f", "yuv4mpegpipe", str(out)],
                   check=True, timeout=120)
    return out


def wait_healthy(url: str, timeout: float = 60, context=None) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2, context=context) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


@contextlib.contextmanager
def streamlit_server(state: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> Iterator[str]:
    """`streamlit run app.py` on a free port with the given environment; yields its URL."""
    port = free_port()
    log_path = state / "streamlit.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             *args], cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(url):
            raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def chromium(camera_stream: Path) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_stream}"])
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, url: str, width: int = 1400, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height})
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


def take_camera_photo(page) -> None:
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for(timeout=60_000)
    page.wait_for_timeout(2000)  # let the fake stream start
    take.click()
