"""Augmentation previews: a photo as training sees it, as people see it on the Dataset page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trashure.config import TrainConfig
from trashure.images import ImageSource, load_array


def augmented_versions(source: ImageSource | Path, n: int = 6, config: TrainConfig | None = None,
                       seed: int = 0, offline: bool = True) -> tuple[Image.Image, list[Image.Image]]:
    """(the photo as the model sees it, n augmented views of it), all 224x224, made exactly as training
    makes them: with offline, the recipe's cut-and-paste and camera noise, then the Keras augmentation
    layers; without, the Keras layers alone (the reference recipe of --mode exact)."""
    import keras

    from trashure.model import build_augmenter
    from trashure.training.views import augmented_copies, board_masks, offline_settings

    config = config or TrainConfig()
    keras.utils.set_random_seed(seed)
    image = load_array(source)[None]
    settings = offline_settings(config) if offline else None
    masks = board_masks(image, settings) if settings is not None else None
    out = augmented_copies(image, n, build_augmenter(config), settings, masks, seed)
    pictures = [Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)) for a in out]
    return pictures[0], pictures[1:]
