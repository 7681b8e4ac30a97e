"""Several visitors classifying at once share one cached Classifier: every answer must be their own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from trashure.config import DEFAULT_MODEL_PATH
from trashure.litert import LiteRTModel
from trashure.prediction import Classifier, tflite_for

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="the shipped model is not in models/")


def distinct_photos(n: int, size: int) -> list[np.ndarray]:
    """Photos different enough that a swapped answer shows (random colours and textures), at the model's size."""
    rng = np.random.default_rng(7)
    photos = []
    for _ in range(n):
        base = rng.integers(0, 256, size=(1, 1, 3))
        noise = rng.integers(-60, 60, size=(size, size, 3))
        photos.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return photos


def test_eight_threads_get_their_own_probabilities():
    classifier = Classifier(DEFAULT_MODEL_PATH)
    photos = distinct_photos(120, classifier.image_size)
    sequential = [classifier.probabilities(p[None])[0] for p in photos]
    assert len({tuple(np.round(s, 4)) for s in sequential}) > 100, "photos too alike to detect a swap"

    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda p: classifier.probabilities(p[None])[0], photos))

    for i, (seq, con) in enumerate(zip(sequential, concurrent)):
        np.testing.assert_allclose(con, seq, atol=1e-5, err_msg=f"photo {i} got another answer")


def test_the_pool_never_exceeds_its_size_and_mixed_batch_sizes_are_safe():
    model = LiteRTModel(tflite_for(DEFAULT_MODEL_PATH), pool_size=3)
    photos = distinct_photos(24, model.input_shape[1])
    batches = [np.stack(photos[i:i + k]).astype(np.float32) for i, k in zip(range(0, 24, 4), [1, 2, 3, 4, 1, 2])]
    expected = [model.run(b) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(model.run, batches * 4))
    for e, g in zip(expected * 4, got):
        np.testing.assert_allclose(g, e, atol=1e-5)
    assert model._created <= 3
