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
    return classes_for(int(model.output_shape[-1]), card, path)


def classes_for(n_outputs: int, card: dict[str, Any], path: Path) -> tuple[str, ...]:
    classes = tuple(card.get("classes") or (CLASSES if n_outputs == len(CLASSES) else ()))
    if len(classes) != n_outputs:
        raise ModelLoadError(f"{path} gives {n_outputs} outputs but its card lists {len(classes)} classes "
                             f"({', '.join(classes) or 'none'}); the card does not belong to this model.")
    return classes


def tflite_for(model_path: Path) -> Path | bytes:
    """A float32 TFLite twin of a .keras model: the committed sibling (<name>.tflite) when its card says
    it was made from this exact file, else a cached conversion keyed by the file's sha256."""
    from trashure.litert import cached_tflite, to_tflite
    from trashure.weights import sha256_file

    sha = sha256_file(model_path)
    sibling = model_path.with_suffix(".tflite")
    if sibling.is_file() and read_card(model_path).get("tflite", {}).get("source_sha256") == sha:
        return sibling

    def convert() -> bytes:
        model = load_keras_model(model_path)
        try:
            return to_tflite(model)
        except Exception as exc:
            raise ModelLoadError(f"{model_path} could not be converted for LiteRT: {exc}") from None

    return cached_tflite(f"model-{sha[:24]}.tflite", convert)


def write_tflite_twin(model, model_path: Path) -> dict[str, Any]:
    """Write the float32 TFLite twin beside a saved .keras model (<name>.tflite) and return the card's
    record of it. Made when a model is saved or shipped, so that the first classification after
    choosing a model needs no conversion (~8-20 s)."""
    from trashure.files import atomic_write_bytes
    from trashure.litert import to_tflite
    from trashure.weights import sha256_file

    twin = Path(model_path).with_suffix(".tflite")
    atomic_write_bytes(twin, to_tflite(model))
    return {"file": twin.name, "source_sha256": sha256_file(model_path),
            "what": "float32 TFLite conversion of the .keras file, for LiteRT"}


class Classifier:
    """Classify waste photos with a trained model: predict() takes a path, bytes or a PIL image.

    backend "litert" (the default) runs the model's float32 TFLite twin in LiteRT with XNNPACK: the same
    probabilities as Keras within 1e-4, several times faster per photo, and no TensorFlow import when the
    twin exists. backend "keras" runs the .keras model itself.
    """

    def __init__(self, model_path: str | Path = DEFAULT_MODEL_PATH, backend: str = "litert") -> None:
        if backend not in ("litert", "keras"):
            raise ValueError(f"backend must be 'litert' or 'keras', not {backend!r}")
        self.model_path = check_model_file(model_path)
        self.backend = backend
        self.card = read_card(self.model_path)
        if backend == "keras":
            self.model = load_keras_model(self.model_path)
            n_outputs, self.image_size = int(self.model.output_shape[-1]), int(self.model.input_shape[1])
            self._forward = None
        else:
            from trashure.litert import LiteRTModel

            self.lite = LiteRTModel(tflite_for(self.model_path))
            n_outputs, self.image_size = self.lite.output_shape[-1], self.lite.input_shape[1]
        self.classes = classes_for(n_outputs, self.card, self.model_path)

    def warm_up(self) -> "Classifier":
        """Run one blank photo, so the first real one does not pay the runtime's first-call set-up."""
        self.probabilities(np.zeros((1, self.image_size, self.image_size, 3), np.float32))
        return self

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of (n, size, size, 3) uint8/float 0-255 RGB images."""
        batch = np.asarray(images, dtype=np.float32)
        if self.backend == "litert":
            return self.lite.run(batch)
        import tensorflow as tf

        if self._forward is None:
            # A compiled function avoids model.predict's per-call set-up, which dominates one photo.
            self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        return np.asarray(self._forward(tf.constant(batch)))

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
