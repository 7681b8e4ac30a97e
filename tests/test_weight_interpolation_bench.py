"""bench/weight_interpolation.py moves a trained fold's weights along the line from the frozen stage's to the
fine-tuned ones: the line must be that line, and its alpha 1 must be the recipe bench/cross_source.py measures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import make_dataset
from trashure.config import TrainConfig

BENCHES = Path(__file__).resolve().parents[1] / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_weights_lie_on_the_line_from_the_frozen_stage_through_the_fine_tuned_ones():
    bench = load("weight_interpolation")
    w0 = [np.array([1.0, 2.0], np.float32), np.array([[0.0]], np.float32)]
    w1 = [np.array([3.0, 2.0], np.float32), np.array([[-4.0]], np.float32)]
    for alpha, want in ((0.0, w0), (1.0, w1), (0.5, [[2.0, 2.0], [[-2.0]]]), (1.5, [[4.0, 2.0], [[-6.0]]])):
        got = bench.interpolated(w0, w1, alpha)
        for g, w in zip(got, want):
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g, np.asarray(w, np.float32))


def test_alpha_one_is_the_fold_cross_source_measures(tmp_path, monkeypatch):
    import trashure.training.fast as fast

    monkeypatch.setenv("TRASHURE_CACHE", str(tmp_path / "cache"))
    bench, cross_source = load("weight_interpolation"), load("cross_source")
    second_stage = fast.run_second_stage
    data = [make_dataset(tmp_path / "a", per_class=8), make_dataset(tmp_path / "b", per_class=5, salt="b")]
    config = TrainConfig(epochs=2, batch_size=8, augmented_views=1, seed=3, fine_tune_blocks=1, fine_tune_epochs=2,
                         glimpse_side=0.0)

    row = bench.run_fold(data, "b", config, [0.0, 1.0])
    want = cross_source.run_fold(data, "b", config)

    assert fast.run_second_stage is second_stage  # the bench's hook is undone
    assert row["n_heldout"] == want["n_heldout"] == 20
    assert row["alphas"]["1.0"]["accuracy"] == pytest.approx(want["accuracy"], abs=1e-9)
    assert set(row["alphas"]) == {"0.0", "1.0"}
    assert all(0 <= a["val_accuracy"] <= 1 for a in row["alphas"].values())
