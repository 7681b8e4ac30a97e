"""The streaming data path: photos read as rows decoded on demand give what an array of them gives, so
memory need not grow with the folder (the figures are in bench/scale.py)."""

from __future__ import annotations

import numpy as np

from conftest import make_dataset
from trashure.config import TrainConfig
from trashure.data import PhotoRows, decode_records, scan_dataset


class MeanColour:
    """A stand-in for the frozen base: each photo's mean colour."""
    output_shape = (None, 3)

    @staticmethod
    def run(batch: np.ndarray) -> np.ndarray:
        return batch.mean(axis=(1, 2))


def _rows(tmp_path, per_class: int = 4) -> PhotoRows:
    return PhotoRows(scan_dataset(make_dataset(tmp_path / "d", per_class=per_class)).records, 64)


def test_photo_rows_read_like_an_array_of_the_photos(tmp_path):
    rows = _rows(tmp_path)
    whole = decode_records(rows.records, 64)
    assert rows.shape == whole.shape == (16, 64, 64, 3) and rows.nbytes == whole.nbytes
    np.testing.assert_array_equal(rows[3], whole[3])
    np.testing.assert_array_equal(rows[2:7], whole[2:7])
    np.testing.assert_array_equal(rows[np.array([9, 0, 4])], whole[[9, 0, 4]])
    mask = np.arange(16) % 3 == 0
    np.testing.assert_array_equal(rows[mask], whole[mask])
    np.testing.assert_array_equal(np.concatenate(list(rows.batches(5))), whole)
    np.testing.assert_array_equal(rows.subset(5, 9).load(), whole[5:9])
    assert [len(b) for b in rows.batches(5)] == [5, 5, 5, 1]


def test_views_streamed_from_disk_equal_views_of_an_array_and_a_shard_draws_its_own_rows(tmp_path):
    from trashure.training.views import extract, offline_settings

    rows = _rows(tmp_path)
    settings = offline_settings(TrainConfig(paste_probability=1.0, photo_noise=True))
    from_array = extract(MeanColour(), rows.load(), 2, None, settings, seed=7, batch_size=3)
    streamed = extract(MeanColour(), rows, 2, None, settings, seed=7, batch_size=3)
    np.testing.assert_allclose(streamed, from_array, rtol=0, atol=1e-6)
    assert not np.allclose(from_array[1], from_array[0])  # the augmented views differ from the clean one
    # A worker's shard (rows 5..11, numbered from 5) draws exactly those rows' views of the whole list.
    shard = extract(MeanColour(), rows.subset(5, 11), 2, None, settings, seed=7, batch_size=4, first_index=5)
    np.testing.assert_allclose(shard, from_array[:, 5:11], rtol=0, atol=1e-6)


def test_views_made_a_batch_ahead_land_in_their_own_rows_whatever_the_batch_size(tmp_path):
    from trashure.training.views import extract, offline_settings

    photos = _rows(tmp_path).load()
    settings = offline_settings(TrainConfig(paste_probability=1.0, photo_noise=True))
    whole = extract(MeanColour(), photos, 3, None, settings, seed=3, batch_size=len(photos))
    for batch_size in (1, 5, 7):
        np.testing.assert_allclose(extract(MeanColour(), photos, 3, None, settings, seed=3, batch_size=batch_size),
                                   whole, rtol=0, atol=1e-6)
    # Each augmented view is its own draw: a misplaced batch or view would show up as a mismatch above.
    assert len({tuple(np.round(whole[v, 0], 3)) for v in range(4)}) == 4


def test_exact_mode_augments_streamed_photos_as_it_augments_photos_in_memory(tmp_path):
    from trashure.training.exact import _offline_transform

    rows = _rows(tmp_path)
    config = TrainConfig(mode="exact", paste_probability=1.0, photo_noise=True)
    in_memory, streamed = _offline_transform(rows.load(), config), _offline_transform(rows, config)
    idx = np.array([1, 6, 12])
    for epoch in (0, 3):
        np.testing.assert_array_equal(streamed(rows[idx], idx, epoch), in_memory(rows[idx], idx, epoch))


def test_an_exact_epoch_shows_a_photo_clean_one_time_in_one_plus_k_as_the_fast_mode_does(tmp_path):
    """The same recipe trained the exact way: fast mode trains on the clean photo and K augmented views,
    so an exact epoch leaves 1 / (1 + K) of the photos without offline augmentation, drawn per epoch."""
    from trashure.training.exact import _offline_transform, clean_share

    rows = _rows(tmp_path)
    photos = rows.load()
    idx = np.arange(len(photos))
    assert clean_share(TrainConfig(augmented_views=4)) == 0.2
    assert clean_share(TrainConfig(augmented_views=4, clean_view=False)) == 0
    left = []
    for epoch in range(40):
        out = _offline_transform(photos, TrainConfig(mode="exact", augmented_views=4))(photos[idx], idx, epoch)
        left.append([np.array_equal(a, b) for a, b in zip(out, photos)])
    left = np.array(left)
    assert 0.12 < left.mean() < 0.28  # about one in five, each photo in its turn
    assert left.any(axis=0).sum() >= len(photos) - 1 and not left.all(axis=0).any()
    never = _offline_transform(photos, TrainConfig(mode="exact", augmented_views=4, clean_view=False))
    assert not any(np.array_equal(a, b) for a, b in zip(never(photos[idx], idx, 0), photos))
