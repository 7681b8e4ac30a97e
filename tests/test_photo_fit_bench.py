"""bench/photo_fit.py measures the cross-source table with photos fitted to their square keeping their aspect:
its fits must keep the aspect, keep what they say they keep, and run the bench with its own cache folder."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from trashure import images

BENCH = Path(__file__).resolve().parents[1] / "bench" / "photo_fit.py"


@pytest.fixture
def photo_fit(monkeypatch):
    monkeypatch.setattr(images, "resize", images.resize)  # main() replaces it: undone after each test
    spec = importlib.util.spec_from_file_location("photo_fit", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def disc_on_board(width: int = 512, height: int = 384) -> Image.Image:
    """A landscape board photo with a red disc (radius 100) in its centre."""
    image = Image.new("RGB", (width, height), (235, 235, 230))
    cx, cy = width // 2, height // 2
    ImageDraw.Draw(image).ellipse((cx - 100, cy - 100, cx + 100, cy + 100), fill=(200, 20, 20))
    return image


def disc_box(image: Image.Image) -> tuple[int, int]:
    """(width, height) of the red pixels' bounding box."""
    a = np.asarray(image).astype(int)
    ys, xs = np.nonzero((a[..., 0] > 150) & (a[..., 1] < 100))
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.mark.parametrize("fit", ["crop", "letterbox"])
def test_the_fits_keep_a_disc_round_where_the_squash_does_not(photo_fit, fit):
    photo = disc_on_board()
    squashed_w, squashed_h = disc_box(images.resize(photo))
    assert squashed_w / squashed_h < 0.8  # the contract's squash narrows a landscape photo's object to 3/4
    out = photo_fit.FITS[fit](photo)
    assert out.size == (images.IMAGE_SIZE, images.IMAGE_SIZE)
    w, h = disc_box(out)
    assert abs(w / h - 1) < 0.05


def test_crop_is_the_centred_square_and_letterbox_keeps_all_of_the_photo(photo_fit):
    photo = disc_on_board()
    # The centred 384x384 square holds the whole disc: scaled by 224/384, its diameter 201 -> ~117.
    assert disc_box(photo_fit.centre_crop(photo))[0] == pytest.approx(201 * 224 / 384, abs=3)
    # Letterboxed, the whole 512-wide photo fits the square: scaled by 224/512, ~88, with board rows above
    # and below repeated from its edge rows.
    boxed = photo_fit.letterbox(photo)
    assert disc_box(boxed)[0] == pytest.approx(201 * 224 / 512, abs=3)
    a = np.asarray(boxed).astype(int)
    assert np.abs(a[:20] - np.array([235, 235, 230])).max() <= 2
    assert np.abs(a[-20:] - np.array([235, 235, 230])).max() <= 2


def test_a_portrait_photo_is_letterboxed_left_and_right(photo_fit):
    photo = disc_on_board(384, 512)
    boxed = np.asarray(photo_fit.letterbox(photo)).astype(int)
    assert boxed.shape == (images.IMAGE_SIZE, images.IMAGE_SIZE, 3)
    assert np.abs(boxed[:, :20] - np.array([235, 235, 230])).max() <= 2
    assert disc_box(Image.fromarray(boxed.astype(np.uint8)))[1] == pytest.approx(201 * 224 / 512, abs=3)


def test_the_bench_runs_cross_source_with_the_fit_and_its_own_cache(photo_fit, monkeypatch, tmp_path):
    seen = {}
    bench = photo_fit.cross_source()

    def fake_main():
        seen.update(argv=list(sys.argv), cache=os.environ["TRASHURE_CACHE"], resize=images.resize)
        bench.save_rows(Namespace(json=str(tmp_path / "rows.json")), {"seed": 0}, [{"accuracy": 0.5}])
        return 0

    monkeypatch.setattr(bench, "main", fake_main)
    monkeypatch.setattr(photo_fit, "cross_source", lambda: bench)
    monkeypatch.setenv("TRASHURE_CACHE", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["photo_fit.py", "--holdout", "mixed4", "--fit", "letterbox", "--seeds", "0"])
    assert photo_fit.main() == 0
    assert Path(seen["argv"][0]).name == "cross_source.py"
    assert seen["argv"][1:] == ["--holdout", "mixed4", "--seeds", "0"]
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert saved == {"recipe": {"seed": 0, "photo_fit": "letterbox"}, "rows": [{"accuracy": 0.5}]}
    assert seen["cache"] == str(tmp_path / "fit-letterbox")  # cached features of squashed photos never reused
    assert seen["resize"] is photo_fit.letterbox
    disc_on_board().save(tmp_path / "landscape.png")
    w, h = disc_box(Image.fromarray(images.load_array(tmp_path / "landscape.png")))
    assert abs(w / h - 1) < 0.05  # the loader that training and evaluation read through fits, not squashes
    monkeypatch.setattr(sys, "argv", ["photo_fit.py", "--fit", "stretch"])
    assert photo_fit.main() == 2
