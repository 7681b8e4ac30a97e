"""Data health: duplicates, leakage across the split, suspect labels, and a 2-D map of the photos.

Nothing is deleted or moved: these functions only report, so that a person decides.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from trashure.data import Dataset, Split


def photo_table(data, seed: int = 42) -> tuple[dict[str, list], np.ndarray, list[str]]:
    """Every photo of one data folder or several, one row each: ({file, path, class, label, source, split,
    classes}, (n, 1280) pooled features from the persistent cache, content sha256s)."""
    from trashure.data import scan_sources, split_dataset
    from trashure.errors import DatasetError
    from trashure.features import pooled_features

    dataset = scan_sources(data)
    try:
        split = split_dataset(dataset, seed)
        part = {(r.source, r.relpath): p for p in ("train", "val", "test") for r in split.part(p)}
    except DatasetError:
        part = {}
    features, shas = pooled_features([r.path for r in dataset.records])
    records = dataset.records
    table = {"file": [f"{r.source}/{r.relpath}" for r in records], "path": [str(r.path) for r in records],
             "class": [r.class_name for r in records], "label": [r.label for r in records],
             "source": [r.source for r in records], "split": [part.get((r.source, r.relpath), "–") for r in records],
             "classes": list(dataset.classes)}
    return table, features, shas


def exact_duplicates(data, seed: int = 42) -> dict[str, Any]:
    """Photos of one data folder or several with the same bytes: the groups, how many mix labels, and how
    many the split spreads over train and test (leakage). Reads the files, decodes nothing."""
    from trashure.data import _map_threads, _read, scan_sources, split_dataset
    from trashure.errors import DatasetError
    from trashure.weights import sha256_file

    dataset = scan_sources(data)
    try:
        split = split_dataset(dataset, seed)
    except DatasetError:
        split = None
    shas = _map_threads(lambda r: _read(sha256_file, r), dataset.records)
    readable = [(i, s) for i, s in enumerate(shas) if len(s) == 64]
    groups = describe_groups(duplicate_groups([s for _, s in readable], [i for i, _ in readable]), dataset, split)
    return {"groups": groups, "n_groups": len(groups), "conflicts": sum(g["conflict"] for g in groups),
            "leaking": sum(g["leaks"] for g in groups)}


def duplicate_groups(keys: Sequence[str], indices: Sequence[int] | None = None) -> list[list[int]]:
    """Groups (2 or more) of photos sharing a key (e.g. the content sha256: exact duplicates)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in zip(indices if indices is not None else range(len(keys)), keys):
        groups[key].append(i)
    return [g for g in groups.values() if len(g) > 1]


def near_duplicate_groups(features: np.ndarray, threshold: float = 0.97) -> list[list[int]]:
    """Groups of photos whose pooled features have a cosine similarity of at least threshold (linked
    transitively): the same object photographed twice, a crop, a re-encode."""
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


def describe_groups(groups: list[list[int]], dataset: Dataset, split: Split | None = None) -> list[dict[str, Any]]:
    """Each group with its photos, and whether it mixes classes (a label conflict), folders, or parts of
    the split (leakage: the same photo trained on and tested on)."""
    part_of = {}
    if split is not None:
        part_of = {(r.source, r.relpath): p for p in ("train", "val", "test") for r in split.part(p)}
    out = []
    for group in groups:
        records = [dataset.records[i] for i in group]
        parts = {part_of.get((r.source, r.relpath)) for r in records} - {None}
        out.append({
            "files": [f"{r.source}/{r.relpath}" for r in records],
            "classes": sorted({r.class_name for r in records}),
            "conflict": len({r.class_name for r in records}) > 1,
            "across_folders": len({r.source for r in records}) > 1,
            "parts": sorted(parts),
            "leaks": "test" in parts and len(parts) > 1 or "val" in parts and "train" in parts,
        })
    return out


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
