"""Test metrics: accuracy, loss, confusion matrix and per-class precision/recall/F1 (scikit-learn)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # keras and the data module load on first use: importing this module stays cheap
    import keras

    from trashure.data import DataDirs, ImageRecord, Photos


def metrics_from_probabilities(probabilities: np.ndarray, labels: np.ndarray,
                               classes: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    indices = list(range(len(classes)))
    predicted = probabilities.argmax(axis=1)
    # Clip like Keras' categorical cross-entropy does, so our loss matches model.evaluate.
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    clipped /= clipped.sum(axis=1, keepdims=True)
    loss = log_loss(labels, clipped, labels=indices) if len(labels) else float("nan")
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=indices, zero_division=0)
    correct = int((predicted == labels).sum())
    return {
        "accuracy": float(accuracy_score(labels, predicted)) if len(labels) else float("nan"),
        "accuracy_ci95": list(wilson_interval(correct, len(labels))),
        "loss": float(loss),
        "n_images": int(len(labels)),
        "classes": list(classes),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=indices).tolist(),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(classes)
        },
    }


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy (scipy's binomtest), fair for small n and near 100%."""
    if n == 0:
        return (float("nan"), float("nan"))
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def metrics_per_source(probabilities: np.ndarray, labels: np.ndarray, sources: Sequence[str],
                       classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """metrics_from_probabilities for the photos of each source (data folder)."""
    sources, probabilities, labels = np.asarray(sources), np.asarray(probabilities), np.asarray(labels)
    return {str(s): metrics_from_probabilities(probabilities[sources == s], labels[sources == s], classes)
            for s in dict.fromkeys(sources.tolist())}


def predict_arrays(model: keras.Model, images: Photos, batch_size: int = 32) -> np.ndarray:
    """Class probabilities of a Keras model for uint8 images (an array, or PhotoRows decoded 256 at a time),
    batch by batch: memory holds one chunk of pixels."""
    if len(images) == 0:
        return np.empty((0, model.output_shape[-1]), np.float32)
    outputs = [model.predict(images[start:start + 256].astype(np.float32), batch_size=batch_size, verbose=0)
               for start in range(0, len(images), 256)]
    return np.concatenate(outputs)


def prediction_rows(records: Sequence[ImageRecord], probabilities: np.ndarray,
                    classes: Sequence[str]) -> list[dict[str, Any]]:
    """One row per photo (for the misclassified gallery): file, true, predicted, confidence, probs."""
    rows = []
    for record, probs in zip(records, probabilities):
        k = int(np.argmax(probs))
        rows.append({"file": record.relpath, "source": record.source, "true": record.class_name, "predicted": classes[k],
                     "confidence": round(float(probs[k]), 6), "correct": int(classes[k] == record.class_name),
                     **{f"p_{c}": round(float(p), 6) for c, p in zip(classes, probs)}})
    return rows


def evaluate_folder(model_path: str | Path, data_dirs: DataDirs, split: str = "test",
                    classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate a saved model on one data folder or several: their test split (the card's seed and
    fractions, so the same photos as in training) or all photos; overall, per class and per source."""
    from trashure.config import TrainConfig
    from trashure.data import PhotoRows, data_dirs_list
    from trashure.errors import DatasetError
    from trashure.fingerprints import checked_dataset, split_for
    from trashure.prediction import load_model_and_card

    if split not in ("test", "val", "train", "all"):
        raise ValueError(f"split must be test, val, train or all, not {split!r}")
    dirs = data_dirs_list(data_dirs)
    model, card, classes = load_model_and_card(model_path, classes)
    config = TrainConfig.from_dict(card.get("training", {}))
    # A folder of cans alone is a fair test set. The split is the one the model was trained with.
    dataset, fingerprints = checked_dataset(dirs, classes, allow_missing=True)
    records = dataset.records if split == "all" else split_for(dataset, fingerprints, config).part(split)
    if not records:
        raise DatasetError(f"no readable photos to evaluate in {', '.join(map(str, dirs))} ({split} split)")
    probabilities = predict_arrays(model, PhotoRows(records, int(model.input_shape[1])))  # streamed
    labels = np.array([r.label for r in records])
    result = metrics_from_probabilities(probabilities, labels, classes)
    result["per_source"] = metrics_per_source(probabilities, labels, [r.source for r in records], classes)
    result.update({"split": split, "model": str(model_path), "data_dir": ", ".join(map(str, dirs)),
                   "seed": config.seed,
                   "skipped_files": [{"file": p.path, "reason": p.reason} for p in dataset.problems]})
    return result
