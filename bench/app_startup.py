"""How fast the dashboard's home page is up: server start -> healthy -> home page rendered.

    python bench/app_startup.py [--repeats 3]

Starts `streamlit run app.py` on a free port, then measures in headless Chromium (Debian's) the time
from launching the server to the home page showing the active model's test accuracy. Also reports
whether the home page's script imported TensorFlow (it must not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(browser) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "TRASHURE_RUNS": tempfile.mkdtemp()}
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        healthy = time.perf_counter()
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator('[data-testid="stMetric"]', has_text="Test accuracy").wait_for(timeout=60_000)
        rendered = time.perf_counter()
        page.close()
        return {"server_up_s": healthy - t0, "home_after_server_s": rendered - healthy, "total_s": rendered - t0}
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        runs = [one_start(browser) for _ in range(args.repeats)]
        browser.close()
    probe = subprocess.run([sys.executable, "-c", "import sys; from streamlit.testing.v1 import AppTest; "
                            "AppTest.from_file('app.py').run(); print('tensorflow' in sys.modules)"],
                           cwd=REPO, capture_output=True, text=True)
    print("| measure | median (s) | runs |")
    print("|---|---:|---|")
    for key in ("server_up_s", "home_after_server_s", "total_s"):
        values = [r[key] for r in runs]
        print(f"| {key} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    print(f"\nhome page imported TensorFlow: {probe.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
