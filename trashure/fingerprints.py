"""What identifies a photo's content, and the split that keeps copies of one photo together.

A photo's fingerprint is its content sha256 (exact duplicates), a 64-bit perceptual hash (near-duplicates:
a re-encode, a resize, a small crop, the same object shot twice from the same place) and its shown size.
Computing one reads every byte and decodes the photo at a reduced scale (a JPEG's draft mode), so it is
also the check that the photo can be read. Fingerprints are cached on disk per data folder, keyed by each
file's path, size and modification time: a second look at 100,000 photos decodes none of them.

The leakage-safe split puts every group of near-duplicates in one part of the split, so a model is never
tested on a copy of a photo it trained on. It works from the listing and the fingerprints, not from
decoded pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trashure.config import TrainConfig, default_cache_dir
from trashure.errors import DatasetError
from trashure.data import (DataDirs, Dataset, FileProblem, ImageRecord, Split, _map_threads, _order_key, _read,
                           scan_sources, split_dataset)

# Hamming distance of perceptual hashes at or below which two photos are near-duplicates. Chosen by eye on
# the pairs of trashnet4 + mixed4 + cans-web: at 6 and below, the pairs are the same object or scene shot
# again (moved a little, turned, re-lit); at 8, different objects on the same backdrop begin to appear.
NEAR_DUPLICATE_DISTANCE = 6
_HASH_DRAFT = (64, 64)  # the perceptual hash looks at 32x32 pixels; decoding JPEGs at >= 64 px is plenty
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    phash: int  # 64-bit DCT perceptual hash of the upright RGB photo (imagehash.phash)
    width: int  # as shown, after the EXIF orientation
    height: int


def fingerprint_file(path: str | Path) -> Fingerprint:
    """The fingerprint of one photo; raises ImageLoadError with the reason when it cannot be read."""
    import imagehash

    from trashure.images import open_image, oriented_size, to_rgb
    from trashure.weights import sha256_file

    image = open_image(path, draft=_HASH_DRAFT)
    width, height = oriented_size(image)
    phash = int(str(imagehash.phash(to_rgb(image))), 16)
    return Fingerprint(sha256_file(path), phash, width, height)


class FingerprintCache:
    """Fingerprints of one data folder's photos, one JSON file per folder, keyed by relative path and
    checked against the file's size and modification time. An entry that does not match, or a cache file
    that cannot be read, is recomputed, never trusted."""

    def __init__(self, root: Path, folder: Path | None = None) -> None:
        key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
        self.path = Path(folder or default_cache_dir() / "fingerprints") / f"{key}.json"
        from trashure.files import read_json

        stored = read_json(self.path, default={})
        ok = isinstance(stored, dict) and stored.get("version") == _CACHE_VERSION
        self.entries: dict[str, list] = stored.get("photos", {}) if ok and isinstance(stored.get("photos"), dict) else {}
        self.changed = False

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def get(self, relpath: str, path: Path) -> Fingerprint | None:
        entry = self.entries.get(relpath)
        try:
            if not (isinstance(entry, list) and len(entry) == 6 and entry[:2] == self._stamp(path)):
                return None
            sha, phash, width, height = entry[2:]
            if not (isinstance(sha, str) and len(sha) == 64):
                return None
            return Fingerprint(sha, int(phash, 16), int(width), int(height))
        except (OSError, TypeError, ValueError):
            return None

    def put(self, relpath: str, path: Path, fp: Fingerprint) -> None:
        try:
            self.entries[relpath] = [*self._stamp(path), fp.sha256, f"{fp.phash:016x}", fp.width, fp.height]
            self.changed = True
        except OSError:
            pass

    def save(self) -> None:
        if not self.changed:
            return
        from trashure.files import atomic_write_json

        try:
            atomic_write_json(self.path, {"version": _CACHE_VERSION, "photos": self.entries})
        except OSError:
            pass  # a read-only cache only costs the next caller the hashing
        self.changed = False


def fingerprint_records(dataset: Dataset) -> list[Fingerprint | str]:
    """A fingerprint for each of dataset.records, or the reason it cannot be read; cached per folder."""
    caches = {source: FingerprintCache(root) for source, root in dataset.roots.items()}
    out: list[Fingerprint | str | None] = [caches[r.source].get(r.relpath, r.path) for r in dataset.records]
    missing = [i for i, fp in enumerate(out) if fp is None]
    computed = _map_threads(lambda i: _read(fingerprint_file, dataset.records[i]), missing)
    for i, result in zip(missing, computed):
        out[i] = result
        if isinstance(result, Fingerprint):
            caches[dataset.records[i].source].put(dataset.records[i].relpath, dataset.records[i].path, result)
    for cache in caches.values():
        cache.save()
    return out  # type: ignore[return-value]


def check_dataset(dataset: Dataset) -> list[Fingerprint]:
    """Fingerprint every photo of a scanned dataset: unreadable ones move from records to problems (named
    by their folder too when several are merged). Returns the fingerprints of the remaining records."""
    results = fingerprint_records(dataset)
    prefix = (lambda r: f"{r.source}/") if len(dataset.roots) > 1 else (lambda r: "")
    dataset.problems += [FileProblem(prefix(r) + r.relpath, fp) for r, fp in zip(dataset.records, results)
                         if isinstance(fp, str)]
    good = [(r, fp) for r, fp in zip(dataset.records, results) if isinstance(fp, Fingerprint)]
    dataset.records = [r for r, _ in good]
    return [fp for _, fp in good]


def checked_dataset(data: DataDirs, classes: Sequence[str] | None = None,
                    **scan_options: Any) -> tuple[Dataset, list[Fingerprint]]:
    """scan_sources, then check_dataset: the readable photos and their fingerprints."""
    dataset = scan_sources(data, classes, **scan_options)
    return dataset, check_dataset(dataset)


def near_duplicate_groups(fingerprints: Sequence[Fingerprint],
                          max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[list[int]]:
    """Groups (2 or more, linked transitively) of photos with the same bytes or perceptual hashes at most
    max_distance bits apart. Compares every pair in blocks, so memory stays bounded."""
    n = len(fingerprints)
    hashes = np.array([fp.phash for fp in fingerprints], dtype=np.uint64)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    def link(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[str, int] = {}
    for i, fp in enumerate(fingerprints):
        link(first.setdefault(fp.sha256, i), i)
    block = max(16, 8_000_000 // max(n, 1))  # about 8 million pairs at a time: ~70 MB of temporaries
    for start in range(0, n if max_distance >= 0 else 0, block):
        distances = np.bitwise_count(hashes[start:start + block, None] ^ hashes[None, :])
        for a, b in zip(*np.nonzero(distances <= max_distance)):
            if start + a < b:
                link(start + int(a), int(b))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def photo_split(dataset: Dataset, fingerprints: Sequence[Fingerprint] | None, seed: int = 42,
                val_fraction: float = 0.1, test_fraction: float = 0.1, leakage_safe: bool = True) -> Split:
    """The split of a checked dataset: leakage-safe (near-duplicate groups kept in one part) unless
    asked for the plain one, which models trained before the leakage-safe split was the default used."""
    groups = near_duplicate_groups(fingerprints) if leakage_safe and fingerprints is not None else None
    return split_dataset(dataset, seed, val_fraction, test_fraction, groups=groups)


def split_for(dataset: Dataset, fingerprints: Sequence[Fingerprint] | None, config: TrainConfig) -> Split:
    """The split a training run with this config made (or makes) of this dataset."""
    return photo_split(dataset, fingerprints, config.seed, config.val_fraction, config.test_fraction,
                       config.leakage_safe_split)


def duplicate_report(dataset: Dataset, fingerprints: Sequence[Fingerprint], seed: int = 42,
                     val_fraction: float = 0.1, test_fraction: float = 0.1, listed: int = 50,
                     near: list[list[int]] | None = None) -> dict[str, Any]:
    """Exact duplicates (same bytes) and near-duplicates of a checked dataset: how many groups, how many
    mix labels (a conflict) or folders, and how many the plain split would spread over training and
    evaluation (leakage) against the leakage-safe split's none; with the first `listed` groups.
    near: the near-duplicate groups when the caller has them already (comparing every pair costs time)."""
    near = near_duplicate_groups(fingerprints) if near is None else near
    parts: dict[str, dict[tuple[str, str], str]] = {}
    try:
        for name, groups in (("plain", None), ("leakage_safe", near)):
            split = split_dataset(dataset, seed, val_fraction, test_fraction, groups=groups)
            parts[name] = {(r.source, r.relpath): p for p in ("train", "val", "test") for r in split.part(p)}
    except DatasetError:
        pass  # too few photos to split: the groups are still reported, without their parts

    def describe(groups: list[list[int]]) -> dict[str, Any]:
        rows = []
        for group in groups:
            records = [dataset.records[i] for i in group]
            keys = [(r.source, r.relpath) for r in records]
            row = {"files": [f"{r.source}/{r.relpath}" for r in records],
                   "classes": sorted({r.class_name for r in records}),
                   "conflict": len({r.class_name for r in records}) > 1,
                   "across_folders": len({r.source for r in records}) > 1}
            for name, part_of in parts.items():
                row[f"parts_{name}"] = sorted({part_of[k] for k in keys})
            rows.append(row)
        spread = {f"spread_{name}": sum(len(r[f"parts_{name}"]) > 1 for r in rows) if parts else None
                  for name in ("plain", "leakage_safe")}
        return {"n_groups": len(rows), "n_photos": sum(len(g) for g in groups),
                "conflicts": sum(r["conflict"] for r in rows), "across_folders": sum(r["across_folders"] for r in rows),
                **spread, "groups": rows[:listed]}

    return {"exact_duplicates": describe(near_duplicate_groups(fingerprints, max_distance=-1)),
            "near_duplicates": {**describe(near), "max_hash_distance": NEAR_DUPLICATE_DISTANCE}}


def sample_photos(data: DataDirs, per_class: int = 3, seed: int = 42) -> dict[str, list[Path]]:
    """A few photos of each class for a demo gallery, taken in turn from each source: from the test part
    of the split, then the validation part, and never a photo with a near-duplicate, so that no model
    trained with this seed has learnt from them, whether its split was leakage-safe or plain (the two
    differ only in the grouped photos); from all photos when the folder is too small to split. Reads the
    fingerprints (cached), decodes nothing at full size."""
    dataset, fingerprints = checked_dataset(data)
    grouped = {id(dataset.records[i]) for g in near_duplicate_groups(fingerprints) for i in g}
    try:
        split = split_dataset(dataset, seed)
        parts = [[r for r in part if id(r) not in grouped] for part in (split.test, split.val)]
    except DatasetError:
        parts = [dataset.records]
    out: dict[str, list[Path]] = {}
    for name in dataset.classes:
        picked: list[Path] = []
        for records in parts:
            picked += _round_robin_by_source([r for r in records if r.class_name == name], seed,
                                             per_class - len(picked))
        out[name] = picked
    return out


def _round_robin_by_source(records: list[ImageRecord], seed: int, n: int) -> list[Path]:
    by_source: dict[str, list[ImageRecord]] = {}
    for r in sorted(records, key=lambda r: _order_key(r, seed)):
        by_source.setdefault(r.source, []).append(r)
    queues = [iter(v) for _, v in sorted(by_source.items())]
    picked: list[Path] = []
    while queues and len(picked) < n:
        for q in list(queues):
            r = next(q, None)
            if r is None:
                queues.remove(q)
            elif len(picked) < n:
                picked.append(r.path)
    return picked

