"""Inference: load a model with its card and classify photos given as a path, bytes or a PIL image."""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trashure.config import CLASSES, DEFAULT_MODEL_PATH
from trashure.errors import ModelLoadError
from trashure.images import ImageSource, load_array


@dataclass
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "probabilities": self.probabilities,
                "seconds": self.seconds}


def card_path_for(model_path: Path) -> Path | None:
    """The model's card: <name>.json beside it, or model_card.json in a run folder."""
    for candidate in (model_path.with_suffix(".json"), model_path.parent / "model_card.json"):
        if candidate.is_file():
            return candidate
    return None


def read_card(model_path: str | Path) -> dict[str, Any]:
    path = card_path_for(Path(model_path))
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model card {path} cannot be read ({exc}); fix or delete it.") from None


def check_model_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist. Train one (python -m trashure train) "
                             "or give the path of a .keras file.")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; give the path of a .keras model file.")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file {path} is empty (0 bytes); it was not saved completely.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a Keras .keras model file (truncated, or another format).")
    return path


def load_keras_model(path: str | Path):
    import keras

    path = check_model_file(path)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ModelLoadError(f"{path} could not be loaded as a Keras model: {type(exc).__name__}: "
                             f"{str(exc)[:300]}") from None


def model_classes(model, card: dict[str, Any], path: Path) -> tuple[str, ...]:
    n_outputs = int(model.output_shape[-1])
    classes = tuple(card.get("classes") or (CLASSES if n_outputs == len(CLASSES) else ()))
    if len(classes) != n_outputs:
        raise ModelLoadError(f"{path} gives {n_outputs} outputs but its card lists {len(classes)} classes "
                             f"({', '.join(classes) or 'none'}); the card does not belong to this model.")
    return classes


class Classifier:
    """Classify waste photos with a trained model: predict() takes a path, bytes or a PIL image."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL_PATH) -> None:
        self.model_path = Path(model_path)
        self.model = load_keras_model(self.model_path)
        self.card = read_card(self.model_path)
        self.classes = model_classes(self.model, self.card, self.model_path)
        self.image_size = int(self.model.input_shape[1])
        self._forward = None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of (n, size, size, 3) uint8/float 0-255 RGB images."""
        import tensorflow as tf

        if self._forward is None:
            # A compiled function avoids model.predict's per-call set-up, which dominates one photo.
            self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        return np.asarray(self._forward(tf.constant(np.asarray(images, dtype=np.float32))))

    def predict(self, source: ImageSource) -> Prediction:
        start = time.perf_counter()
        image = load_array(source, self.image_size)
        probs = self.probabilities(image[None])[0]
        return self._prediction(probs, time.perf_counter() - start)

    def predict_many(self, sources: Sequence[ImageSource], batch_size: int = 32) -> list[Prediction]:
        out = []
        for start in range(0, len(sources), batch_size):
            t0 = time.perf_counter()
            chunk = sources[start:start + batch_size]
            batch = np.stack([load_array(s, self.image_size) for s in chunk])
            probs = self.probabilities(batch)
            each = (time.perf_counter() - t0) / len(chunk)
            out += [self._prediction(p, each) for p in probs]
        return out

    def _prediction(self, probs: np.ndarray, seconds: float) -> Prediction:
        k = int(np.argmax(probs))
        return Prediction(self.classes[k], float(probs[k]),
                          {c: float(p) for c, p in zip(self.classes, probs)}, round(seconds, 6))
