"""DropBlock at the cut: what it changes in a batch of activations, and that the fine-tuning stage uses it."""

import numpy as np
import pytest

from fine_tune_kit import fine_tuning_batches
from trashure.config import TrainConfig
from trashure.training.drop_block import BLOCK_SIDES, block_dropper, chained, drop_blocks


def activations(n: int = 8, side: int = 14, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(2, 3, size=(n, side, side, 5)).astype(np.float16)


def changed_cells(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (after != before.astype(np.float32)).any(axis=-1)


def test_each_row_loses_one_rectangle_of_cells_to_its_own_channel_means():
    x = activations()
    out = drop_blocks(x, np.random.default_rng(1), probability=1.0)
    assert out.dtype == np.float32 and out.shape == x.shape
    means = x.astype(np.float32).mean(axis=(1, 2))
    for row in range(len(x)):
        cells = changed_cells(x[row], out[row])
        ys, xs = np.nonzero(cells)
        height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert cells.sum() == height * width  # one solid rectangle
        assert BLOCK_SIDES[0] <= height <= BLOCK_SIDES[1] and BLOCK_SIDES[0] <= width <= BLOCK_SIDES[1]
        np.testing.assert_allclose(out[row][cells], np.broadcast_to(means[row], (cells.sum(), 5)), rtol=1e-6)
        np.testing.assert_array_equal(out[row][~cells], x[row][~cells].astype(np.float32))  # the rest untouched


def test_the_probability_is_the_share_of_rows_touched_and_a_block_fits_a_small_map():
    x = activations(n=400)
    touched = changed_cells(x, drop_blocks(x, np.random.default_rng(2), probability=0.5)).any(axis=(1, 2))
    assert 0.4 < touched.mean() < 0.6
    np.testing.assert_array_equal(drop_blocks(x, np.random.default_rng(2), probability=0.0), x.astype(np.float32))
    small = activations(n=4, side=2)  # sides clip to the map: the whole map takes its means
    out = drop_blocks(small, np.random.default_rng(3), probability=1.0)
    np.testing.assert_allclose(out, np.broadcast_to(small.astype(np.float32).mean(axis=(1, 2), keepdims=True),
                                                    out.shape), rtol=1e-6)


def test_the_dropper_is_off_at_zero_and_draws_reproducibly_from_epoch_and_batch():
    assert block_dropper(0.0, seed=1) is None
    dropper = block_dropper(1.0, seed=1)
    x, idx = activations(), np.arange(10, 18)
    np.testing.assert_array_equal(dropper(x, idx, 0), dropper(x, idx, 0))
    assert not np.array_equal(dropper(x, idx, 0), dropper(x, idx, 1))  # another epoch, other blocks
    assert not np.array_equal(dropper(x, idx, 0), block_dropper(1.0, seed=2)(x, idx, 0))


def test_chained_transforms_run_in_order_and_leave_out_the_missing():
    def add(k):
        return lambda batch, idx, epoch: batch + k

    def double(batch, idx, epoch):
        return batch * 2

    x, idx = np.ones((2, 2, 2, 1), np.float32), np.arange(2)
    assert chained(None, None) is None
    assert chained(None, double) is double
    np.testing.assert_array_equal(chained(add(1), None, double)(x, idx, 0), np.full_like(x, 4))  # (1 + 1) * 2
    np.testing.assert_array_equal(chained(double, add(1))(x, idx, 0), np.full_like(x, 3))  # 1 * 2 + 1


def test_dropping_is_a_share_off_by_default_refused_in_exact_mode_and_off_in_older_configs():
    with pytest.raises(ValueError, match="drop_block_probability"):
        TrainConfig(drop_block_probability=1.5)
    assert TrainConfig().drop_block_probability == 0
    assert TrainConfig.for_mode("exact").drop_block_probability == 0
    with pytest.raises(ValueError, match="drop_block_probability"):
        TrainConfig.for_mode("exact", drop_block_probability=0.5)  # no activations at the cut there
    assert TrainConfig.from_dict({"mode": "fast"}).drop_block_probability == 0


def test_the_fast_fine_tuning_stage_feeds_its_batches_through_the_dropper(monkeypatch):
    """fine_tune_on_cut hands ArrayBatches the dropper made from the config: its batches lose blocks."""
    cached = {"train": np.stack([activations(6), activations(6, seed=1)]), "val": activations(2)[None]}
    for share, expect_dropped in ((1.0, True), (0.0, False)):
        batches = fine_tuning_batches(monkeypatch, cached, np.array([0, 1, 2, 3, 0, 1]),
                                      TrainConfig(drop_block_probability=share, batch_size=6))
        plain = cached["train"].reshape(-1, 14, 14, 5)[np.sort(batches.order[:6])].astype(np.float32)
        dropped = changed_cells(plain, batches[0][0]).any(axis=(1, 2))
        assert dropped.all() if expect_dropped else not dropped.any()
