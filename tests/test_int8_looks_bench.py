"""bench/int8_looks.py traces where int8 parts from Keras look by look: its recomputed pick must be the model's,
its looks must be the model's looks in the model's order, and the looks must add up to the model's answer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from test_glimpse import random_tied_cells, sharp_model, smooth_photo
from trashure.config import CLASSES
from trashure.glimpse import GlimpseCrop, with_glimpse

BENCH = Path(__file__).resolve().parents[1] / "bench" / "int8_looks.py"
OTHER = CLASSES.index("other")


def load():
    spec = importlib.util.spec_from_file_location("int8_looks", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recomputed_pick_is_the_half_cell_the_model_crops_from():
    bench, crop = load(), GlimpseCrop(0.5, 224, OTHER)
    cells = random_tied_cells(200, seed=11)
    tied, pick = bench.picks(cells, OTHER)
    weights_y, weights_x = (np.asarray(w) for w in crop._axis_picks(crop._tied_cells(cells)))
    single = (weights_y.max(1) == 1) & (weights_x.max(1) == 1)  # exactly half-way the model takes two half-cells
    assert single.sum() > 150
    np.testing.assert_array_equal(pick[single], np.stack([weights_y.argmax(1), weights_x.argmax(1)], 1)[single])
    np.testing.assert_array_equal(tied, np.asarray(crop._tied_cells(cells)).astype(bool))


def test_the_looks_are_the_models_own_and_add_up_to_its_answer():
    bench = load()
    model = with_glimpse(sharp_model(), CLASSES, 0.5, mirror=True)
    photos = smooth_photo(3, seed=12)
    photos[:, :, :150] *= 0.3  # the mirror image is another photo to the model
    looks = bench.run_keras(bench.looks_model(model), photos)
    np.testing.assert_allclose(looks["final"], np.asarray(model(photos)), atol=1e-5)
    assert looks["whole"].shape == (2, 3, len(CLASSES)) and looks["cells"].shape == (2, 3, 7, 7, len(CLASSES))
    np.testing.assert_allclose(((looks["whole"] + looks["close"]) / 2).mean(0), looks["final"], atol=1e-5)
    one = bench.run_keras(bench.looks_model(model), photos[1:2])  # photo 1 alone: its looks, in the same places
    np.testing.assert_allclose(one["whole"][:, 0], looks["whole"][:, 1], atol=1e-5)
