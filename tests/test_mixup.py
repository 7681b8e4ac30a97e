"""Mixup of the cached features: what it does to a batch, and that both fast stages feed their batches through it."""

import numpy as np
import pytest

from fine_tune_kit import fine_tuning_batches
from trashure.config import TrainConfig
from trashure.training.mixup import batch_mixer, mix_rows


def batch(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.eye(4, dtype=np.float32)[np.arange(n) % 4]
    return rng.normal(size=(n, 3, 3, 2)).astype(np.float16), labels, rng.uniform(0.5, 2, n).astype(np.float32)


def test_each_row_is_the_same_convex_mix_of_itself_and_a_partner_in_inputs_labels_and_weights():
    x, y, w = batch()
    mx, my, mw = mix_rows(x, y, w, np.random.default_rng(3), alpha=0.4)
    rng = np.random.default_rng(3)  # re-drawn: each row's partner and lambda
    partner, lam = rng.permutation(len(x)), rng.beta(0.4, 0.4, size=len(x))
    xf = x.astype(np.float64)
    np.testing.assert_allclose(mx, lam[:, None, None, None] * xf + (1 - lam[:, None, None, None]) * xf[partner],
                               atol=1e-5)
    np.testing.assert_allclose(my, lam[:, None] * y + (1 - lam[:, None]) * y[partner], atol=1e-6)
    np.testing.assert_allclose(mw, lam * w + (1 - lam) * w[partner], atol=1e-6)
    np.testing.assert_allclose(my.sum(axis=1), 1, atol=1e-6)  # still a distribution over the classes
    assert not np.allclose(my, y)  # the labels did move
    assert mix_rows(x[:1], y[:1], None, rng, 0.4)[2] is None  # one row: nothing to mix; no weights stay none


def test_the_mixer_is_off_at_zero_reproducible_and_fresh_each_epoch():
    assert batch_mixer(0.0, seed=1) is None
    x, y, w = batch()
    idx = np.arange(8)
    mix = batch_mixer(0.2, seed=1)
    first, again = mix(x, y, w, idx, 0), mix(x, y, w, idx, 0)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(mix(x, y, w, idx, 1)[1], first[1])


def test_mixup_is_bounded_off_by_default_refused_in_exact_mode_and_off_in_older_configs():
    assert TrainConfig().mixup_alpha == 0
    with pytest.raises(ValueError, match="mixup_alpha"):
        TrainConfig(mixup_alpha=-0.1)
    with pytest.raises(ValueError, match="fast"):
        TrainConfig.for_mode("exact", mixup_alpha=0.2)  # its batches are photos, not cached features
    assert TrainConfig.for_mode("exact").mixup_alpha == 0
    assert TrainConfig.from_dict({"mode": "fast"}).mixup_alpha == 0


def test_array_batches_hand_rows_labels_and_weights_to_the_mix():
    from trashure.training.keras_loop import ArrayBatches

    x, y, w = batch()
    plain = ArrayBatches(x, y, 8, seed=0, weights=w)
    mixed = ArrayBatches(x, y, 8, seed=0, weights=w, mix=batch_mixer(0.2, seed=1))
    px, py, pw = plain[0]
    mx, my, mw = mixed[0]
    assert mx.shape == px.shape and my.shape == py.shape and mw.shape == pw.shape
    assert not np.allclose(my, py)
    np.testing.assert_allclose(my.sum(axis=1), 1, atol=1e-6)


def test_the_fine_tuning_stage_mixes_its_batches_when_asked(monkeypatch):
    cached = {"train": np.stack([batch()[0], batch(seed=1)[0]]), "val": batch(2)[0][None]}
    for alpha, expect_mixed in ((0.0, False), (0.2, True)):
        batches = fine_tuning_batches(monkeypatch, cached, np.array([0, 1, 2, 3, 0, 1, 2, 3]),
                                      TrainConfig(mixup_alpha=alpha, batch_size=8))
        labels = batches[0][1]
        assert (not np.allclose(labels, np.round(labels))) == expect_mixed  # soft labels only when mixed
