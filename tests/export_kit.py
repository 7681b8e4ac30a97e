"""What the export tests share: the shipped model's test split at its input size, and the reference
probabilities of the shipped .keras file itself. A module of its own so that the export tests can live in
several files, which `make test`'s workers then run side by side (each file runs on one worker)."""

from __future__ import annotations

import numpy as np
import pytest

from trashure.config import DEFAULT_MODEL_PATH, TrainConfig
from trashure.export import input_size
from trashure.modelfile import read_card
from trashure.runtimes import load_runner, node_available

CLASSES = ["can", "glass_bottle", "other", "plastic_bottle"]
SIZE = input_size(read_card(DEFAULT_MODEL_PATH))  # 448: the shipped model looks twice (trashure.glimpse)
needs_node = pytest.mark.skipif(not node_available(),
                                reason="needs Node.js and tools/tfjs/node_modules (bash tools/tfjs/setup.sh)")


def split_records(data_dirs):
    from trashure.fingerprints import checked_dataset, split_for

    config = TrainConfig.from_dict(read_card(DEFAULT_MODEL_PATH)["training"])
    return split_for(*checked_dataset(data_dirs, CLASSES), config).test


def load_test_split(data_dirs):
    """(records, images 0-255 at the model's size, labels) of the shipped model's test part."""
    from trashure.images import load_array

    records = split_records(data_dirs)
    images = np.stack([load_array(r.path, SIZE) for r in records]).astype(np.float32)
    return records, images, np.array([r.label for r in records])


def reference_probabilities(images: np.ndarray) -> np.ndarray:
    """The reference: the shipped .keras file itself (not an exported copy), in Keras."""
    return load_runner("keras", DEFAULT_MODEL_PATH.parent)(images)
