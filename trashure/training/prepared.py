"""Training data: one or several data folders scanned, fingerprinted and split (by class and by source,
near-duplicates kept together). Each part's photos are rows decoded when a stage reads them, batch by
batch, so memory does not grow with the number of photos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from trashure.config import IMAGE_EXTENSIONS, TrainConfig
from trashure.data import DataDirs, Dataset, ImageRecord, PhotoRows, Split, scan_sources
from trashure.errors import DatasetError
from trashure.fingerprints import Fingerprint, check_dataset, split_for

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class PreparedData:
    dataset: Dataset
    split: Split
    images: dict[str, PhotoRows]  # split name -> its photos as rows of 224x224x3 pixels, decoded when read
    labels: dict[str, np.ndarray]  # split name -> (n,) int
    fingerprints: dict[tuple[str, str], Fingerprint] | None = None  # (source, relpath) -> fingerprint

    def sources(self, part: str) -> np.ndarray:
        return np.array([r.source for r in self.split.part(part)])

    def sizes(self) -> dict[str, int]:
        return {name: len(self.split.part(name)) for name in SPLIT_NAMES}

    def content_sha256(self, part: str) -> list[str]:
        """The content hashes of a part's photos (from the fingerprints; hashed now if there are none)."""
        if self.fingerprints is None:
            from trashure.weights import sha256_file

            return [sha256_file(r.path) for r in self.split.part(part)]
        return [self.fingerprints[(r.source, r.relpath)].sha256 for r in self.split.part(part)]


def prepare_data(data_dirs: DataDirs, config: TrainConfig, classes: Sequence[str] | None = None,
                 keep: Callable[[ImageRecord], bool] | None = None) -> PreparedData:
    """Scan, check and split data folders; refuse only when the data cannot support training.
    keep: a filter on photos (e.g. leave one source out), applied before checking and splitting."""
    dataset = scan_sources(data_dirs, classes)
    if keep is not None:
        dataset.records = [r for r in dataset.records if keep(r)]
    if len(dataset.classes) < 2:
        raise DatasetError(f"{dataset.root} has only one class ({dataset.classes[0]}); a classifier needs "
                           "at least two class sub-folders.")
    if not dataset.records:
        raise DatasetError(f"{dataset.root} has no photos in its class folders "
                           f"({', '.join(dataset.classes)}); supported: {', '.join(sorted(IMAGE_EXTENSIONS))}.")
    fingerprints = check_dataset(dataset)
    if not dataset.records:
        raise DatasetError(f"none of the photos in {dataset.root} could be read; first problem: "
                           f"{dataset.problems[0].path}: {dataset.problems[0].reason}")
    split = split_for(dataset, fingerprints, config)
    labels = {name: np.array([r.label for r in split.part(name)], dtype=np.int64) for name in SPLIT_NAMES}
    by_record = {(r.source, r.relpath): fp for r, fp in zip(dataset.records, fingerprints)}
    images = {name: PhotoRows(split.part(name), config.image_size) for name in SPLIT_NAMES}
    return PreparedData(dataset, split, images, labels, by_record)
