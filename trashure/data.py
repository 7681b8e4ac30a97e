"""Datasets: a folder of class sub-folders (or several merged), scanned, split 80/10/10 and read as rows of
photos decoded on demand. What identifies a photo, and the leakage-safe split: trashure.fingerprints."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np

from trashure.config import IMAGE_EXTENSIONS, IMAGE_SIZE
from trashure.errors import DatasetError, ImageLoadError
from trashure.images import load_array

SPLITS = ("train", "val", "test")
# One data folder or several (merged by class name).
DataDirs = str | Path | Sequence[str | Path]
T = TypeVar("T")


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    label: int
    class_name: str
    relpath: str  # relative to its data folder, with forward slashes: the stable identity of a photo
    source: str = ""  # the data folder's name (several folders are merged; each is a source)


@dataclass(frozen=True)
class FileProblem:
    path: str
    reason: str


@dataclass
class Dataset:
    root: Path
    classes: tuple[str, ...]
    records: list[ImageRecord]
    problems: list[FileProblem] = field(default_factory=list)  # files found but not usable
    ignored: list[FileProblem] = field(default_factory=list)  # files that are not photos at all
    roots: dict[str, Path] = field(default_factory=dict)  # source name -> its folder

    def counts(self) -> dict[str, int]:
        c = Counter(r.class_name for r in self.records)
        return {name: c.get(name, 0) for name in self.classes}

    def counts_per_source(self) -> dict[str, dict[str, int]]:
        c = Counter((r.source, r.class_name) for r in self.records)
        return {s: {name: c.get((s, name), 0) for name in self.classes} for s in self.roots}

    def path_of(self, source: str, relpath: str) -> Path:
        return self.roots[source] / relpath

    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)


@dataclass
class Split:
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]

    def part(self, name: str) -> list[ImageRecord]:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {name: len(self.part(name)) for name in SPLITS}

    def sizes_per_class(self, classes: Sequence[str]) -> dict[str, dict[str, int]]:
        out = {}
        for name in SPLITS:
            c = Counter(r.class_name for r in self.part(name))
            out[name] = {k: c.get(k, 0) for k in classes}
        return out


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("._")


def _short(path: Path, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else text[:limit] + "…"


def check_data_dir(root: str | Path) -> Path:
    root = Path(root).expanduser()
    try:
        exists = root.exists()
    except OSError as exc:  # a name longer than the file system allows, a path too deep
        raise DatasetError(f"Data folder {_short(root)} cannot be used: {exc.strerror}.") from None
    if not exists:
        raise DatasetError(f"Data folder {root} does not exist. Give a folder with one sub-folder per class.")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file, not a folder. Give a folder with one sub-folder per class.")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DatasetError(f"Data folder {root} is not readable (permission denied).")
    return root


def _documents_only(folder: Path) -> bool:
    """A sub-folder with files but not one photo (LICENSES/, docs/) is no class. An empty one is: the
    person meant a class and gets told it has no photos."""
    has_files = False
    for _, _, files in os.walk(folder):
        for name in files:
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                return False
            has_files = has_files or not _is_hidden(name)
    return has_files


def discover_classes(root: str | Path) -> tuple[str, ...]:
    """Class names: the visible sub-folders of root, in alphabetical order (the model's output order)."""
    root = check_data_dir(root)
    names = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and not _is_hidden(p.name) and not _documents_only(p))
    if not names:
        raise DatasetError(
            f"{root} has no class sub-folders. Put the photos of each class in its own sub-folder, "
            "e.g. can/, glass_bottle/, other/, plastic_bottle/.")
    return tuple(names)


def _leaves(path: Path, folder: Path) -> Path | None:
    """Where a symlink under folder leads when that is outside folder (its photos would be labelled with
    this folder's class), else None."""
    if not path.is_symlink():
        return None
    try:
        target = path.resolve()
    except (OSError, RuntimeError):
        return None  # a loop or a broken link: reported as such below
    return None if target.is_relative_to(folder) else target


def _walk_files(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """Files under folder (recursively, following symlinks once, never out of folder); yields (path,
    problem or None)."""
    seen: set[tuple[int, int]] = set()
    try:
        inside = folder.resolve()
    except (OSError, RuntimeError):
        inside = folder

    def walk(d: Path) -> Iterator[tuple[Path, str | None]]:
        try:
            st = d.stat()
        except OSError as exc:
            yield d, f"folder cannot be read ({exc.strerror})"
            return
        if (st.st_dev, st.st_ino) in seen:
            yield d, "symlink loop: this folder was already scanned; skipped"
            return
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            yield d, f"folder cannot be read ({exc.strerror}); check its permissions"
            return
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            path = Path(entry.path)
            outside = _leaves(path, inside)
            if outside is not None:
                yield path, (f"symlink out of its class folder (to {outside}): skipped, its photos would get "
                             "this folder's label")
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                yield from walk(path)
            elif not path.exists():
                yield path, "broken symlink: its target does not exist"
            else:
                yield path, None

    yield from walk(folder)


def data_dirs_list(data: DataDirs) -> list[Path]:
    """One data folder or several, as a list of paths."""
    if isinstance(data, (str, Path)):
        return [Path(data)]
    return [Path(d) for d in data]


def source_name(root: Path) -> str:
    return Path(root).expanduser().resolve().name or str(root)


def scan_sources(data: DataDirs, classes: Sequence[str] | None = None,
                 allow_missing: bool = False) -> Dataset:
    """Several data folders merged by class name; each folder is a source of its own.

    A folder may lack some classes (a folder of cans only merges cleanly). Without `classes`, the class
    list is the union of the folders' class sub-folders, and a folder whose class names match none of the
    others' is refused: its photos would become classes of their own.
    """
    roots = [check_data_dir(d) for d in data_dirs_list(data)]
    if not roots:
        raise DatasetError("no data folder given")
    names = [source_name(r) for r in roots]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DatasetError(f"two data folders have the same name ({', '.join(twice)}); each folder is a source "
                           "and is named by its folder: rename one of them.")
    if len(roots) == 1 and not (allow_missing and classes is not None):
        dataset = scan_dataset(roots[0], classes)
        dataset.records = [dataclasses.replace(r, source=names[0]) for r in dataset.records]
        dataset.roots = {names[0]: dataset.root}
        return dataset
    found = {name: discover_classes(root) for name, root in zip(names, roots)}
    if classes is None:
        _check_class_names(found)
        classes = sorted({c for cs in found.values() for c in cs})
    classes = tuple(classes)
    missing = [c for c in classes if not any(c in cs for cs in found.values())]
    if missing and not allow_missing:
        raise DatasetError(f"no data folder has a sub-folder for class(es) {', '.join(missing)}; "
                           f"expected: {', '.join(classes)}.")
    merged = Dataset(roots[0], classes, [], roots=dict(zip(names, roots)))
    for name, root in zip(names, roots):
        part = scan_dataset(root, [c for c in classes if c in found[name]])
        label = {c: classes.index(c) for c in part.classes}
        merged.records += [dataclasses.replace(r, label=label[r.class_name], source=name) for r in part.records]
        merged.problems += [FileProblem(f"{name}/{p.path}", p.reason) for p in part.problems]
        merged.ignored += [FileProblem(f"{name}/{p.path}", p.reason) for p in part.ignored]
    return merged


def _check_class_names(found: dict[str, tuple[str, ...]]) -> None:
    """Refuse folders that cannot be merged by class name: one that shares no class with the folders
    before it, and names that differ only in case or separators (`Can` and `can`), which would become
    two classes."""
    seen: set[str] = set()
    for i, (name, own) in enumerate(found.items()):
        others, seen = set(seen), seen | set(own)
        if i > 0 and not set(own) & others:
            raise DatasetError(
                f"the class folders of {name} ({', '.join(own)}) match none of the other folders' classes "
                f"({', '.join(sorted(others))}); folders are merged by class name, so name its sub-folders "
                "like the others' or leave that folder out.")
    spellings: dict[str, set[str]] = {}
    for own in found.values():
        for c in own:
            spellings.setdefault(c.lower().replace("-", "_").replace(" ", "_"), set()).add(c)
    clashes = [sorted(v) for v in spellings.values() if len(v) > 1]
    if clashes:
        raise DatasetError("class folders spelt differently in different folders: "
                           + "; ".join(" / ".join(c) for c in clashes) + ". Use one spelling in every folder.")


def scan_dataset(root: str | Path, classes: Sequence[str] | None = None) -> Dataset:
    """List the photos of a data folder without decoding them.

    classes: the expected class names in output order; None discovers them from the sub-folders.
    A listed class without a folder is an error; folders of other classes are left out.
    """
    root = check_data_dir(root)
    class_names = tuple(classes) if classes is not None else discover_classes(root)
    missing = [c for c in class_names if not (root / c).is_dir()]
    if missing:
        raise DatasetError(
            f"{root} has no sub-folder for class(es) {', '.join(missing)}; "
            f"expected one sub-folder per class: {', '.join(class_names)}.")
    records, problems, ignored = [], [], []
    source = source_name(root)
    for label, name in enumerate(class_names):
        for path, problem in _walk_files(root / name):
            rel = path.relative_to(root).as_posix()
            if problem:
                problems.append(FileProblem(rel, problem))
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                ignored.append(FileProblem(rel, f"{path.suffix or 'no extension'} is not a supported photo type "
                                                f"({', '.join(sorted(IMAGE_EXTENSIONS))}); ignored"))
            else:
                records.append(ImageRecord(path, label, name, rel, source))
    return Dataset(root, class_names, records, problems, ignored, {source: root})


def _read(read: Callable[[Path], T], record: ImageRecord) -> T | str:
    """read(record.path), or the reason it failed as a string: one odd file never stops a scan."""
    try:
        return read(record.path)
    except ImageLoadError as exc:
        return str(exc).split(": ", 1)[-1]  # the message without the path, which the report shows
    except Exception as exc:
        return f"cannot be read ({exc})"


def _map_threads(fn: Callable[[ImageRecord], T], records: Sequence[ImageRecord],
                 workers: int | None = None) -> list[T]:
    # Pillow releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(fn, records))


def decode_dataset(dataset: Dataset, size: int = IMAGE_SIZE, workers: int | None = None) -> np.ndarray:
    """Decode every photo to an (n, size, size, 3) uint8 array. Photos that fail move from
    dataset.records to dataset.problems; the array rows follow the remaining dataset.records."""
    results = _map_threads(lambda r: _read(lambda p: load_array(p, size), r), dataset.records, workers)
    good = [(r, a) for r, a in zip(dataset.records, results) if not isinstance(a, str)]
    dataset.problems += [FileProblem(r.relpath, a) for r, a in zip(dataset.records, results) if isinstance(a, str)]
    dataset.records = [r for r, _ in good]
    if not good:
        return np.empty((0, size, size, 3), dtype=np.uint8)
    return np.stack([a for _, a in good])


def decode_records(records: Sequence[ImageRecord], size: int = IMAGE_SIZE, workers: int | None = None) -> np.ndarray:
    """Decode photos already checked (e.g. fingerprinted) into one preallocated (n, size, size, 3) uint8
    array; a photo that fails now (changed since the check) raises DatasetError naming it."""
    out = np.empty((len(records), size, size, 3), dtype=np.uint8)

    def fill(i: int) -> str | None:
        result = _read(lambda p: load_array(p, size), records[i])
        if isinstance(result, str):
            return result
        out[i] = result
        return None

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        for record, problem in zip(records, pool.map(fill, range(len(records)))):
            if problem:
                raise DatasetError(f"{_short(record.path)}: {problem} (it changed after the photos were checked; "
                                   "run again, or remove it)")
    return out


class PhotoRows:
    """A list of photos read as rows of (size, size, 3) uint8 pixels, decoded when a row is read: len(),
    rows[i], rows[a:b], rows[index or boolean array], batches(). Nothing stays in memory but what a caller
    keeps, so code written for an array of photos streams a folder of any size."""

    def __init__(self, records: Sequence[ImageRecord], size: int = IMAGE_SIZE) -> None:
        self.records, self.size = list(records), size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.records), self.size, self.size, 3)

    @property
    def nbytes(self) -> int:
        return len(self.records) * self.size * self.size * 3

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return decode_records([self.records[key]], self.size)[0]
        if isinstance(key, slice):
            return decode_records(self.records[key], self.size)
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return decode_records([self.records[int(i)] for i in index], self.size)

    def subset(self, start: int, stop: int) -> "PhotoRows":
        """Rows start..stop, still undecoded (one worker's shard)."""
        return PhotoRows(self.records[start:stop], self.size)

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Consecutive batches, the next one decoded while the caller works on this one."""
        with ThreadPoolExecutor(max_workers=1) as ahead:
            starts = range(0, len(self.records), batch_size)
            pending = ahead.submit(self.__getitem__, slice(0, batch_size)) if starts else None
            for start in starts:
                batch = pending.result()
                nxt = start + batch_size
                pending = ahead.submit(self.__getitem__, slice(nxt, nxt + batch_size)) if nxt < len(self) else None
                yield batch

    def load(self) -> np.ndarray:
        """Every row at once."""
        return decode_records(self.records, self.size)


# Photos as (n, size, size, 3) uint8 pixels: in memory, or rows decoded as they are read.
Photos = np.ndarray | PhotoRows


def _order_key(record: ImageRecord, seed: int) -> str:
    # A hash of (seed, path) orders photos independently of listing order and of other files.
    return hashlib.sha256(f"{seed}:{record.relpath}".encode()).hexdigest()


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes for one class; every non-zero fraction gets at least one photo."""
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    return n - n_val - n_test, n_val, n_test


def min_photos_per_class(val_fraction: float, test_fraction: float) -> int:
    return 1 + (val_fraction > 0) + (test_fraction > 0)


def split_dataset(dataset: Dataset, seed: int = 42, val_fraction: float = 0.1,
                  test_fraction: float = 0.1, groups: Sequence[Sequence[int]] | None = None) -> Split:
    """Deterministic split, stratified by class and by source: each (source, class) group is divided
    80/10/10 on its own, so every source keeps its proportions and a folder's part of a merged split is
    the split that folder would get alone.

    The order within a group comes from a seeded hash of each photo's relative path, so the split
    does not depend on the order files are listed in. A group too small to divide goes to training.

    groups: indices into dataset.records of photos that must share a part (near-duplicates, see
    trashure.fingerprints); each such group joins the part of its first member in the seeded order.
    """
    needed = min_photos_per_class(val_fraction, test_fraction)
    too_few = {c: n for c, n in dataset.counts().items() if n < needed}
    if too_few:
        detail = ", ".join(f"{c} has {n}" for c, n in too_few.items())
        raise DatasetError(
            f"Too few usable photos for a stratified train/validation/test split: {detail}; "
            f"each class needs at least {needed} (and realistically 20 or more). Add photos or "
            "remove the class folder.")
    strata: dict[tuple[str, int], list[ImageRecord]] = {}
    for r in dataset.records:
        strata.setdefault((r.source, r.label), []).append(r)
    split = Split([], [], [])
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda r: _order_key(r, seed))
        if len(members) < needed:
            split.train += members
            continue
        n_train, n_val, _ = split_counts(len(members), val_fraction, test_fraction)
        split.train += members[:n_train]
        split.val += members[n_train:n_train + n_val]
        split.test += members[n_train + n_val:]
    return _keep_together(split, dataset, groups, seed) if groups else split


def _keep_together(split: Split, dataset: Dataset, groups: Sequence[Sequence[int]], seed: int) -> Split:
    part_of = {id(r): name for name in ("train", "val", "test") for r in split.part(name)}
    for group in groups:
        records = [dataset.records[i] for i in group]
        leader = min(records, key=lambda r: _order_key(r, seed))
        for r in records:
            part_of[id(r)] = part_of[id(leader)]
    ordered = split.train + split.val + split.test
    return Split(*([r for r in ordered if part_of[id(r)] == name] for name in ("train", "val", "test")))
