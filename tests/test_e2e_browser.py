"""End to end in a real browser: `streamlit run app.py`, headless Chromium with a fake camera.

The camera streams a real photo of a can from ../shared/data; the test takes the photo on the Classify
page and reads the prediction, then visits every page. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from browser_kit import (MISSING, chromium, fake_camera_stream, new_page, settle, streamlit_server,
                         take_camera_photo)

# Screenshots go to a temporary folder unless TRASHURE_ARTIFACTS names one (to refresh docs/screenshots).
ARTIFACTS = Path(os.environ["TRASHURE_ARTIFACTS"]) if os.environ.get("TRASHURE_ARTIFACTS") else None


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = ARTIFACTS or tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
PAGES = {"": "Trashure", "dataset": "Dataset", "train": "Train", "results": "Results", "explore": "Explore",
         "classify": "Classify", "export": "Export"}

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def can_photo(shared: Path) -> Path:
    """The first demo-tier can photo of the manifest."""
    with open(shared / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["class"] == "can" and r["tier"] == "demo"]
    return shared / rows[0]["file"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_data):
    state = tmp_path_factory.mktemp("e2e")
    env = {"TRASHURE_RUNS": str(state / "runs"), "TRASHURE_DATA": str(shared_data), "TRASHURE_MODEL": ""}
    try:
        with streamlit_server(state, env) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser(tmp_path_factory, shared_data):
    stream = fake_camera_stream(can_photo(shared_data), tmp_path_factory.mktemp("cam") / "can.y4m")
    with chromium(stream) as browser:
        yield browser


def test_camera_photo_of_a_can_is_classified_as_can(server, browser, artifacts):
    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    take_camera_photo(page)
    metric = page.locator('[data-testid="stMetric"]', has_text="Prediction")
    metric.wait_for(timeout=120_000)
    value = metric.locator('[data-testid="stMetricValue"]').inner_text()
    settle(page)
    page.screenshot(path=str(artifacts / "classify.png"), full_page=True)
    assert value.strip() == "can"
    assert page.locator('[data-testid="stException"]').count() == 0


def demo_photos(shared: Path, name: str) -> list[Path]:
    with open(shared / "manifest.csv", newline="") as f:
        return [shared / r["file"] for r in csv.DictReader(f) if r["class"] == name and r["tier"] == "demo"]


def shown_verdict(page) -> tuple[str, str]:
    """(what is being classified, the predicted class) once the page has settled."""
    settle(page)
    what = page.get_by_text("Classifying ", exact=False).first.inner_text()
    metric = page.locator('[data-testid="stMetric"]', has_text="Prediction")
    return what, metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_an_upload_after_a_camera_photo_is_the_one_classified(server, browser, shared_data, artifacts):
    from trashure.prediction import Classifier

    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    take_camera_photo(page)
    page.locator('[data-testid="stMetric"]', has_text="Prediction").wait_for(timeout=120_000)
    what, camera_label = shown_verdict(page)
    assert what.startswith("Classifying your camera photo")
    # A photo of another class that the model tells apart from the camera's verdict.
    classifier = Classifier()
    upload = next(p for p in demo_photos(shared_data, "plastic_bottle") if classifier.predict(p).label != camera_label)
    page.get_by_role("tab", name="Upload").click()
    # Only image types: a phone's file chooser then offers its own camera beside the gallery.
    accept = page.locator('[data-testid="stFileUploaderDropzoneInput"]').get_attribute("accept").split(",")
    from trashure.config import IMAGE_EXTENSIONS

    assert {a for a in accept if a != "application/streamlit"} == set(IMAGE_EXTENSIONS)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text(f"Classifying your upload {upload.name}", exact=False).wait_for(timeout=60_000)
    what, label = shown_verdict(page)
    page.screenshot(path=str(artifacts / "classify-upload-after-camera.png"), full_page=True)
    assert label == classifier.predict(upload).label != camera_label
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_sample_photo_is_classified_with_one_click(server, browser, artifacts):
    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    page.get_by_role("tab", name="Samples").click()
    page.get_by_role("button", name="Classify").first.click(timeout=60_000)
    page.get_by_text("Classifying sample photo", exact=False).wait_for(timeout=60_000)
    what, label = shown_verdict(page)
    page.screenshot(path=str(artifacts / "classify-sample.png"), full_page=True)
    assert "can/" in what  # the first row of the gallery is the first class
    assert label in ("can", "glass_bottle", "other", "plastic_bottle")
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.mark.parametrize("size", [(1400, 1000), (1024, 768)], ids=["1400x1000", "1024x768"])
@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_without_an_exception(server, browser, path, size, artifacts):
    page = new_page(browser, server, *size)
    page.goto(f"{server}/{path}")
    settle(page)
    page.locator("h1").first.wait_for(timeout=60_000)
    assert PAGES[path] in page.locator("h1").first.inner_text()
    if path == "dataset":  # the real photos are all checked and counted
        page.locator('[data-testid="stMetric"]', has_text="Readable photos").wait_for(timeout=60_000)
        assert "1875" in page.locator('[data-testid="stMetric"]', has_text="Readable photos").inner_text()
    page.screenshot(path=str(artifacts / f"page-{path or 'home'}-{size[0]}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    # Nothing wider than the window: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_upload_above_the_limit_is_refused_with_a_message(server, browser, tmp_path, artifacts):
    """.streamlit/config.toml caps uploads at 25 MB; the browser refuses a bigger photo with a message."""
    big = tmp_path / "huge_photo.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(26 * 1024 * 1024))
    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    page.get_by_role("tab", name="Upload").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(big))
    page.get_by_text("must be 25.0MB or smaller", exact=False).wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "upload-too-large.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stMetric"]', has_text="Prediction").count() == 0


def test_why_heat_map_and_the_explorer_tabs(server, browser, artifacts):
    page = new_page(browser, server)
    page.goto(f"{server}/classify")
    settle(page)
    page.get_by_role("tab", name="Samples").click()
    page.get_by_role("button", name="Classify").nth(3).click(timeout=60_000)
    page.get_by_text("Classifying sample photo", exact=False).wait_for(timeout=60_000)
    settle(page)
    page.get_by_text("Why? Show where the model looked").click()
    page.get_by_text("Where the evidence for", exact=False).wait_for(timeout=120_000)
    settle(page)
    page.screenshot(path=str(artifacts / "classify-why.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0

    page.goto(f"{server}/explore")
    settle(page)
    # The features of every photo come first (a spinner); the map's chart follows.
    page.get_by_role("tab", name="Duplicates and leakage").wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    page.screenshot(path=str(artifacts / "explore-map.png"), full_page=True)
    for tab, words in (("Duplicates and leakage", "Exact duplicates"), ("Suspect labels", "Out-of-fold")):
        page.get_by_role("tab", name=tab).click()
        page.get_by_text(words, exact=False).first.wait_for(timeout=120_000)
    settle(page)
    page.screenshot(path=str(artifacts / "explore-suspects.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
