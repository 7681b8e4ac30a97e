"""Augmentation previews: a photo through the training augmenter, as people see it on the Dataset page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trashure.config import TrainConfig
from trashure.images import ImageSource, load_array


def augmented_versions(source: ImageSource | Path, n: int = 6, config: TrainConfig | None = None,
                       seed: int = 0) -> list[Image.Image]:
    """n random augmentations of one photo (224x224), with the same Keras layers as training."""
    import keras

    from trashure.model import build_augmenter

    config = config or TrainConfig()
    keras.utils.set_random_seed(seed)
    augmenter = build_augmenter(config)
    batch = np.repeat(load_array(source)[None].astype(np.float32), n, axis=0)
    out = np.asarray(augmenter(batch, training=True))
    return [Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)) for a in out]
