"""Uploads and camera shots that are not a tidy JPEG: a message, never a traceback."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO, encoded, photo

APP = str(REPO / "app.py")


def classify(tmp_path, monkeypatch, name: str, data: bytes, mime: str) -> AppTest:
    monkeypatch.setenv("TRASHURE_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/classify.py").run()
    at.file_uploader[0].set_value((name, data, mime)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def prediction(at: AppTest) -> str | None:
    return next((m.value for m in at.metric if m.label == "Prediction"), None)


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


red = photo((200, 40, 40), (320, 240))
CASES_OK = {
    "grey.png": (encoded(red.convert("L"), "PNG"), "image/png"),
    "deep.png": (encoded(Image.fromarray(np.asarray(red.convert("L"), np.uint16) * 257), "PNG"), "image/png"),
    "alpha.png": (encoded(red.convert("RGBA"), "PNG"), "image/png"),
    "cmyk.jpg": (encoded(red.convert("CMYK"), "JPEG"), "image/jpeg"),
}


@pytest.mark.parametrize("name", list(CASES_OK))
def test_odd_but_valid_photos_are_classified(tmp_path, monkeypatch, name):
    data, mime = CASES_OK[name]
    at = classify(tmp_path, monkeypatch, name, data, mime)
    assert prediction(at) in ("can", "glass_bottle", "other", "plastic_bottle")
    assert not at.error


def test_animated_gif_classifies_its_first_frame_and_says_so(tmp_path, monkeypatch):
    frames = [photo((200, 40, 40), (120, 90)).convert("P"), photo((40, 40, 200), (120, 90)).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    at = classify(tmp_path, monkeypatch, "anim.gif", buf.getvalue(), "image/gif")
    assert prediction(at) is not None
    assert any("animated image with 2 frames" in i.value for i in at.info)


@pytest.mark.parametrize("name,data,words", [
    ("notes.png", b"just some text, not a photo", "not an image Pillow can read"),
    ("cut.jpg", encoded(red, "JPEG")[:500], "truncated"),
    ("empty.jpg", b"", "empty"),
    ("huge.png", encoded(Image.new("1", (30000, 30000)), "PNG"), "pixel limit"),
])
def test_bad_uploads_get_a_message(tmp_path, monkeypatch, name, data, words):
    at = classify(tmp_path, monkeypatch, name, data, "image/png" if name.endswith("png") else "image/jpeg")
    assert prediction(at) is None
    assert "cannot be classified" in errors(at) and words in errors(at)
