"""Inference: load a model with its card and classify photos given as a path, bytes or a PIL image."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from trashure.config import DEFAULT_MODEL_PATH
from trashure.errors import ModelLoadError
from trashure.images import ImageSource, load_array
from trashure.modelfile import bound_classes, check_model_file, trusted_twin, twin_record, verified_card
from trashure.weights import sha256_file

if TYPE_CHECKING:  # keras loads lazily: importing this module stays cheap
    import keras


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


def load_keras_model(path: str | Path) -> keras.Model:
    import keras

    import trashure.glimpse  # noqa: F401  (registers the close-up layer of two-pass models)

    path = check_model_file(path)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise ModelLoadError(f"{path} could not be loaded as a Keras model: {type(exc).__name__}: "
                             f"{str(exc)[:300]}") from None


def load_model_and_card(path: str | Path, classes: Sequence[str] | None = None
                        ) -> tuple[keras.Model, dict[str, Any], tuple[str, ...]]:
    """(Keras model, verified card, class names) for evaluating or exporting a model; a model that does not
    take photos, a card of another model or outputs without names are refused with one clear line."""
    path = check_model_file(path)
    card = verified_card(path)
    model = load_keras_model(path)
    check_input_shape(model.input_shape, path)
    if len(model.output_shape) != 2:
        raise ModelLoadError(f"{path} outputs shape {tuple(model.output_shape)[1:]}, not one probability a class.")
    return model, card, bound_classes(path, int(model.output_shape[-1]), card, classes)


def check_input_shape(input_shape: Sequence, path: Path) -> int:
    """The square photo size a model takes, or a clear refusal for a model that does not take photos."""
    shape = tuple(input_shape)
    if len(shape) != 4 or shape[3] != 3 or not shape[1] or shape[1] != shape[2]:
        raise ModelLoadError(f"{path} takes inputs of shape {shape[1:]}, not square RGB photos "
                             "(height, width, 3): it is not a Trashure image classifier.")
    return int(shape[1])


def twin_cache_name(sha: str) -> str:
    return f"model-{sha[:24]}.tflite"


def needs_tensorflow(model_path: str | Path) -> bool:
    """Whether classifying with this model must load TensorFlow (no trusted twin, no cached conversion)."""
    from trashure.config import default_cache_dir

    try:
        path = check_model_file(model_path)
        sha = sha256_file(path)
        if trusted_twin(path, verified_card(path, sha), sha) is not None:
            return False
    except ModelLoadError:
        return False  # refused before any TensorFlow is needed
    return not (default_cache_dir() / twin_cache_name(sha)).is_file()


def tflite_for(model_path: Path, sha: str | None = None, card: dict[str, Any] | None = None) -> Path | bytes:
    """A float32 TFLite twin of a .keras model: the sibling (<name>.tflite) when the card binds it to this
    exact file, else a cached conversion keyed by the file's sha256. A caller that has already hashed the
    model and verified its card passes them."""
    from trashure.litert import cached_tflite, to_tflite

    sha = sha or sha256_file(model_path)
    card = verified_card(model_path, sha) if card is None else card
    twin = trusted_twin(model_path, card, sha)
    if twin is not None:
        return twin

    def convert() -> bytes:
        model = load_keras_model(model_path)
        check_input_shape(model.input_shape, model_path)
        try:
            return to_tflite(model, signature=False)
        except Exception as exc:
            raise ModelLoadError(f"{model_path} could not be converted for LiteRT: {exc}") from None

    return cached_tflite(twin_cache_name(sha), convert)


def write_tflite_twin(model: keras.Model, model_path: Path) -> dict[str, Any]:
    """Write the float32 TFLite twin beside a saved .keras model (<name>.tflite) and return the card's
    record of it. Made when a model is saved or shipped, so that the first classification after
    choosing a model needs no conversion (~8-20 s)."""
    from trashure.files import atomic_write_bytes
    from trashure.litert import to_tflite

    twin = Path(model_path).with_suffix(".tflite")
    atomic_write_bytes(twin, to_tflite(model, signature=False))
    return twin_record(Path(model_path), twin)


class Classifier:
    """Classify waste photos with a trained model: predict() takes a path, bytes or a PIL image.

    backend "litert" (the default) runs the model's float32 TFLite twin in LiteRT with XNNPACK: the same
    probabilities as Keras within 1e-4, several times faster per photo, and no TensorFlow import when the
    twin exists. backend "keras" runs the .keras model itself.
    """

    def __init__(self, model_path: str | Path = DEFAULT_MODEL_PATH, backend: str = "litert",
                 classes: Sequence[str] | None = None) -> None:
        if backend not in ("litert", "keras"):
            raise ValueError(f"backend must be 'litert' or 'keras', not {backend!r}")
        self.model_path = check_model_file(model_path)
        self.backend = backend
        sha = sha256_file(self.model_path)  # once: the card's check and the twin's lookup share it
        self.card = verified_card(self.model_path, sha)
        if backend == "keras":
            self.model = load_keras_model(self.model_path)
            input_shape, n_outputs = self.model.input_shape, int(self.model.output_shape[-1])
            self._forward = None
        else:
            from trashure.litert import LiteRTModel

            self.lite = LiteRTModel(tflite_for(self.model_path, sha, self.card))
            input_shape, n_outputs = (None, *self.lite.input_shape[1:]), self.lite.output_shape[-1]
        self.image_size = check_input_shape(input_shape, self.model_path)
        self.classes = bound_classes(self.model_path, n_outputs, self.card, classes)

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
