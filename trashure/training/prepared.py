"""Training data: one or several data folders scanned, decoded and split (by class and by source)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from trashure.config import TrainConfig
from trashure.data import Dataset, ImageRecord, Split, decode_dataset, scan_sources, split_dataset
from trashure.errors import DatasetError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class PreparedData:
    dataset: Dataset
    split: Split
    images: dict[str, np.ndarray]  # split name -> (n, 224, 224, 3) uint8
    labels: dict[str, np.ndarray]  # split name -> (n,) int

    def sources(self, part: str) -> np.ndarray:
        return np.array([r.source for r in self.split.part(part)])


def prepare_data(data_dirs: str | Path | Sequence[str | Path], config: TrainConfig, classes=None,
                 keep: Callable[[ImageRecord], bool] | None = None) -> PreparedData:
    """Scan, decode and split data folders; refuse only when the data cannot support training.
    keep: a filter on photos (e.g. leave one source out), applied before decoding and splitting."""
    dataset = scan_sources(data_dirs, classes)
    if keep is not None:
        dataset.records = [r for r in dataset.records if keep(r)]
    if len(dataset.classes) < 2:
        raise DatasetError(f"{dataset.root} has only one class ({dataset.classes[0]}); a classifier needs "
                           "at least two class sub-folders.")
    if not dataset.records:
        raise DatasetError(f"{dataset.root} has no photos in its class folders "
                           f"({', '.join(dataset.classes)}); supported: jpg, jpeg, png, bmp, webp.")
    images = decode_dataset(dataset, config.image_size)
    if not dataset.records:
        raise DatasetError(f"none of the photos in {dataset.root} could be read; first problem: "
                           f"{dataset.problems[0].path}: {dataset.problems[0].reason}")
    split = split_dataset(dataset, config.seed, config.val_fraction, config.test_fraction)
    row = {(r.source, r.relpath): i for i, r in enumerate(dataset.records)}
    out_images, out_labels = {}, {}
    for name in SPLIT_NAMES:
        idx = np.array([row[(r.source, r.relpath)] for r in split.part(name)], dtype=np.int64)
        out_images[name] = images[idx] if len(idx) else images[:0]
        out_labels[name] = np.array([r.label for r in split.part(name)], dtype=np.int64)
    return PreparedData(dataset, split, out_images, out_labels)
