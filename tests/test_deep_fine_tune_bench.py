"""bench/deep_fine_tune/train.py runs without TensorFlow (Keras on JAX, on a lent GPU), so it makes its training
views itself: they must be the package's views, draw for draw, or its rows would measure another recipe."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from test_offline_augment import board_photo, red_disc_on_board
from trashure.config import TrainConfig

HARNESS = Path(__file__).resolve().parents[1] / "bench" / "deep_fine_tune" / "train.py"


@pytest.fixture
def harness():
    spec = importlib.util.spec_from_file_location("deep_fine_tune_train", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photos() -> np.ndarray:
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)  # no board: never pasted, noise only
    return np.stack([board_photo()[0], red_disc_on_board()[0], scene, board_photo(seed=1, cx=60)[0]])


def test_the_harness_makes_the_package_views_draw_for_draw(harness):
    from trashure.training import views

    settings = views.offline_settings(TrainConfig())
    pixels = photos()
    harness.PHOTOS, harness.OFFLINE = pixels, settings
    # Photos 3 and 1 as the first two of a training part: the draws follow the place in the part.
    got = harness.views_of((42, [0, 1], [3, 1]))
    part = pixels[[3, 1]]
    masks = views.board_masks(part, settings)
    assert masks[0] is not None and masks[1] is not None
    with ThreadPoolExecutor(2) as pool:
        for view in range(1, harness.VIEWS + 1):
            want = views.offline_batch(part, np.arange(2), masks, settings, 42, view, pool)
            np.testing.assert_array_equal(got[:, view - 1], want)
    assert got.shape == (2, TrainConfig().augmented_views, 224, 224, 3)
    assert not np.array_equal(got[0, 0], part[0])  # an augmented view, not the photo


def test_a_part_is_scored_overall_per_source_and_for_the_held_out_per_class(harness):
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    scores = harness.part_scores(probabilities, np.array([0, 1, 1]), ["a", "a", "b"], ["can", "other"], True)
    assert (scores["all"], scores["a"], scores["b"]) == (2 / 3, 0.5, 1.0)
    assert scores["confusion"] == [[1, 0], [1, 1]] and scores["recall"] == {"can": 1.0, "other": 0.5}
    assert scores["loss"] == pytest.approx(-np.log([0.9, 0.2, 0.7]).mean(), abs=1e-6)
    assert "confusion" not in harness.part_scores(probabilities, np.array([0, 1, 1]), ["a"] * 3, ["can", "other"])


def test_jobs_alternate_by_seed_and_stop_when_one_kind_runs_out(harness):
    manifest = {"in_domain": {"42": {}, "0": {}}, "cross": {"42": {}, "0": {}, "1": {}}}
    assert harness.job_order(manifest, ["in_domain", "cross"]) == [
        ("in_domain", 42), ("cross", 42), ("in_domain", 0), ("cross", 0), ("cross", 1)]
