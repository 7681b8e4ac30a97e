"""Training data: one or several data folders scanned, fingerprinted and split (by class and by source,
near-duplicates kept together); the photos of each part are decoded only when a stage asks for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from trashure.config import IMAGE_EXTENSIONS, TrainConfig
from trashure.data import Dataset, ImageRecord, Split, decode_records, scan_sources
from trashure.errors import DatasetError
from trashure.fingerprints import Fingerprint, check_dataset, split_for

SPLIT_NAMES = ("train", "val", "test")


class DecodedParts(Mapping):
    """part name -> (n, size, size, 3) uint8 pixels, decoded on first use: a fast run whose views are all
    cached never decodes a photo."""

    def __init__(self, split: Split, size: int) -> None:
        self._split, self._size, self._decoded = split, size, {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise KeyError(name)
        if name not in self._decoded:
            self._decoded[name] = decode_records(self._split.part(name), self._size)
        return self._decoded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(SPLIT_NAMES)

    def __len__(self) -> int:
        return len(SPLIT_NAMES)


@dataclass
class PreparedData:
    dataset: Dataset
    split: Split
    images: Mapping[str, np.ndarray]  # split name -> (n, 224, 224, 3) uint8, decoded when first read
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


def prepare_data(data_dirs: str | Path | Sequence[str | Path], config: TrainConfig, classes=None,
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
    return PreparedData(dataset, split, DecodedParts(split, config.image_size), labels, by_record)
