"""MixStyle at the cut: what it changes in a batch of activations, and that the fine-tuning stage uses it."""

import numpy as np
import pytest

from fine_tune_kit import fine_tuning_batches
from trashure.config import TrainConfig
from trashure.training.style_mix import mix_styles, style_mixer


def activations(n: int = 6, seed: int = 0) -> np.ndarray:
    """Feature maps whose rows have very different per-channel means and spreads (their 'style')."""
    rng = np.random.default_rng(seed)
    layout = rng.normal(size=(n, 5, 5, 3))
    return (layout * rng.uniform(0.5, 4, (n, 1, 1, 3)) + rng.uniform(-5, 5, (n, 1, 1, 3))).astype(np.float16)


def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x.astype(np.float64)
    return x.mean(axis=(1, 2)), x.std(axis=(1, 2))


def test_each_row_keeps_its_layout_and_takes_a_mix_of_two_rows_statistics():
    x = activations()
    out = mix_styles(x, np.random.default_rng(1))
    mean, std = stats(x)
    out_mean, out_std = stats(out)
    # Re-drawn with the same generator: the partner and weight of every row.
    rng = np.random.default_rng(1)
    partner = rng.permutation(len(x))
    weight = rng.beta(0.1, 0.1, size=len(x))[:, None]
    np.testing.assert_allclose(out_mean, weight * mean + (1 - weight) * mean[partner], atol=1e-3)
    np.testing.assert_allclose(out_std, weight * std + (1 - weight) * std[partner], atol=1e-3)
    # The layout (the map normalised per channel) is the row's own.
    normalised = (x - mean[:, None, None]) / std[:, None, None]
    out_normalised = (out - out_mean[:, None, None]) / out_std[:, None, None]
    np.testing.assert_allclose(out_normalised, normalised, atol=2e-2)
    assert not np.allclose(out_mean, mean, atol=1e-2)  # the statistics did move


def test_the_fine_tuning_batches_get_mixed_styles_only_when_asked_for():
    assert style_mixer(0.0, seed=1) is None
    x, idx = activations(), np.arange(6)
    always = style_mixer(1.0, seed=1)
    first, again = always(x, idx, 0), always(x, idx, 0)
    np.testing.assert_array_equal(first, again)  # reproducible for the same seed, batch and epoch
    assert not np.allclose(first, x.astype(np.float32), atol=1e-2)
    assert not np.allclose(always(x, idx, 1), first)  # a fresh draw next epoch
    half = style_mixer(0.5, seed=1)
    mixed = [not np.array_equal(half(x, idx, epoch), x) for epoch in range(40)]
    assert 8 < sum(mixed) < 32


def test_style_mixing_is_a_share_off_by_default_refused_in_exact_mode_and_off_in_older_configs():
    with pytest.raises(ValueError, match="style_mix_probability"):
        TrainConfig(style_mix_probability=1.5)
    assert TrainConfig.for_mode("exact").style_mix_probability == 0
    with pytest.raises(ValueError, match="fast"):
        TrainConfig.for_mode("exact", style_mix_probability=0.2)  # no activations at the cut to mix there
    assert TrainConfig.from_dict({"mode": "fast"}).style_mix_probability == 0


def test_the_fast_fine_tuning_stage_feeds_its_batches_through_the_style_mixer(monkeypatch):
    """fine_tune_on_cut hands ArrayBatches the mixer made from the config (a spy on style_mixer)."""
    from trashure.training import fast

    asked = []

    def spy(probability, seed, alpha=0.1):
        asked.append(probability)
        return style_mixer(probability, seed, alpha)

    monkeypatch.setattr(fast, "style_mixer", spy)
    cached = {"train": np.stack([activations(), activations(seed=1)]), "val": activations(2)[None]}
    batches = fine_tuning_batches(monkeypatch, cached, np.array([0, 1, 2, 3, 0, 1]),
                                  TrainConfig(style_mix_probability=1.0, batch_size=6))
    assert asked == [1.0]  # the config's share
    plain = cached["train"].reshape(-1, 5, 5, 3)[np.sort(batches.order[:6])].astype(np.float32)
    assert not np.allclose(batches[0][0], plain, atol=1e-2)
