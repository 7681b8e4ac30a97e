"""Data health: duplicates, leakage across the split, suspect labels, and a 2-D map of the photos.

Nothing is deleted or moved: these functions only report, so that a person decides.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from trashure.errors import DatasetError

if TYPE_CHECKING:  # the data module loads on first use: the light pages import this one
    from trashure.data import DataDirs


def inspect_dataset(data: DataDirs, classes: Sequence[str] | None = None, seed: int = 42,
                    val_fraction: float = 0.1, test_fraction: float = 0.1) -> dict[str, Any]:
    """Everything a person wants to know before training, for one data folder or several merged: counts
    (overall and per source), unreadable files, sizes, exact and near-duplicates, and the split a training
    run makes (leakage-safe). Every photo is read and checked; none is decoded at full size."""
    from trashure.data import split_dataset
    from trashure.fingerprints import checked_dataset, duplicate_report, near_duplicate_groups

    dataset, fingerprints = checked_dataset(data, classes)
    near = near_duplicate_groups(fingerprints)  # once: the report and the split both need the groups
    sizes = Counter((fp.width, fp.height) for fp in fingerprints)
    counts = dataset.counts()
    report: dict[str, Any] = {
        "data_dir": ", ".join(str(r) for r in dataset.roots.values()),
        "data_dirs": [str(r) for r in dataset.roots.values()],
        "classes": list(dataset.classes),
        "counts": counts,
        "counts_per_source": dataset.counts_per_source(),
        "n_images": len(dataset.records),
        "unreadable": [{"file": p.path, "reason": p.reason} for p in dataset.problems],
        "ignored": [{"file": p.path, "reason": p.reason} for p in dataset.ignored],
        "image_sizes": [{"width": w, "height": h, "count": n} for (w, h), n in sizes.most_common()],
        "imbalance_ratio": (max(counts.values()) / min(counts.values())) if counts and min(counts.values()) else None,
        **duplicate_report(dataset, fingerprints, seed, val_fraction, test_fraction, near=near),
    }
    try:
        split = split_dataset(dataset, seed, val_fraction, test_fraction, groups=near)  # leakage-safe
        report["split"] = split.sizes_per_class(dataset.classes)
        report["split_error"] = None
    except DatasetError as exc:
        report["split"] = None
        report["split_error"] = str(exc)
    report["split_policy"] = "leakage-safe: near-duplicate groups kept in one part"
    report["training_error"] = report["split_error"]
    if len(dataset.classes) < 2:
        report["training_error"] = (f"training needs at least two classes; {report['data_dir']} has one "
                                    f"({', '.join(dataset.classes)}). Add it to folders with the other classes.")
    return report


def photo_table(data: DataDirs, seed: int = 42) -> tuple[dict[str, list], np.ndarray, list[str]]:
    """Every readable photo of one data folder or several, one row each: ({file, path, class, label, source,
    split, classes}, (n, 1280) pooled features from the persistent cache, content sha256s). The split is
    the one a training run with this seed makes."""
    from trashure.features import pooled_features
    from trashure.fingerprints import checked_dataset, photo_split

    dataset, fingerprints = checked_dataset(data)
    try:
        split = photo_split(dataset, fingerprints, seed)
        part = {(r.source, r.relpath): p for p in ("train", "val", "test") for r in split.part(p)}
    except DatasetError:
        part = {}
    features, shas = pooled_features([r.path for r in dataset.records], shas=[fp.sha256 for fp in fingerprints])
    records = dataset.records
    table = {"file": [f"{r.source}/{r.relpath}" for r in records], "path": [str(r.path) for r in records],
             "class": [r.class_name for r in records], "label": [r.label for r in records],
             "source": [r.source for r in records], "split": [part.get((r.source, r.relpath), "–") for r in records],
             "classes": list(dataset.classes)}
    return table, features, shas


def duplicate_groups(keys: Sequence[str], indices: Sequence[int] | None = None) -> list[list[int]]:
    """Groups (2 or more) of photos sharing a key (e.g. the content sha256: exact duplicates)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in zip(indices if indices is not None else range(len(keys)), keys):
        groups[key].append(i)
    return [g for g in groups.values() if len(g) > 1]


def similar_feature_groups(features: np.ndarray, threshold: float = 0.97) -> list[list[int]]:
    """Groups of photos whose pooled features have a cosine similarity of at least threshold (linked
    transitively): the same object photographed twice, a crop, a re-encode; looser than the perceptual
    hash of trashure.fingerprints (which the split uses), as it sees what the model sees."""
    unit = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-8)
    parent = list(range(len(unit)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, len(unit), 512):  # blocks keep memory bounded
        sims = unit[start:start + 512] @ unit.T
        for a, b in zip(*np.nonzero(sims >= threshold)):
            a = int(a) + start
            if a < b:
                parent[root(a)] = root(int(b))
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(unit)):
        groups[root(i)].append(i)
    return [g for g in groups.values() if len(g) > 1]


def suspect_labels(features: np.ndarray, labels: np.ndarray, classes: Sequence[str], folds: int = 5,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Photos ranked by how unlikely their given label is under out-of-fold predictions: a logistic
    regression on the cached features, trained on the other folds (so a photo never judges itself)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(labels, minlength=len(classes))
    folds = int(min(folds, counts[counts > 0].min())) if (counts > 0).any() else 0
    if folds < 2:
        return []
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    probs = cross_val_predict(model, features, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              method="predict_proba")
    given = probs[np.arange(len(labels)), labels]
    order = np.argsort(given)
    return [{"index": int(i), "given": classes[labels[i]], "given_probability": float(given[i]),
             "predicted": classes[int(probs[i].argmax())], "predicted_probability": float(probs[i].max())}
            for i in order if probs[i].argmax() != labels[i]]


def embedding(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of the photos' features: PCA (instant) or t-SNE (neighbourhoods; slower)."""
    from sklearn.decomposition import PCA

    reduced = PCA(n_components=min(50, *features.shape), random_state=seed).fit_transform(features)
    if method == "pca":
        return reduced[:, :2]
    if method != "tsne":
        raise ValueError(f"method must be 'pca' or 'tsne', not {method!r}")
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
