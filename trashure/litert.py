"""TensorFlow Lite conversion and the LiteRT (XNNPACK) interpreter.

On this kind of CPU the LiteRT interpreter runs MobileNetV2 about 3x faster per image than TensorFlow's
own graph executor, so it carries the heavy lifting: fast-mode feature extraction and live prediction.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

if TYPE_CHECKING:  # keras loads lazily: the app classifies with LiteRT alone
    import keras


def to_tflite(model: keras.Model, representative: Iterable[np.ndarray] | None = None, signature: bool = True) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer; with representative data, full-integer int8.

    signature=True goes through a SavedModel export, so the file carries its `serving_default` signature
    (what an app's signature runner calls): for exported files. signature=False converts the model's
    inference function with its weights frozen into constants: the same operations and outputs (within 2e-6
    of Keras) in ~1.3 s instead of ~5.5 s here, for the files Trashure runs itself (a run's TFLite twin,
    the frozen base of the fast mode), which address tensors by index."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
        if signature:
            model.export(tmp, format="tf_saved_model", verbose=False)
            return saved_model_to_tflite(tmp, representative)
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=model.inputs[0].name)
        serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
        # Its advice to pass the model as trackable_obj would keep variables alive that the frozen
        # function no longer uses, and takes the slow path again (6.5 s).
        absl = logging.getLogger("absl")
        level = absl.level
        absl.setLevel(logging.ERROR)
        try:
            converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        finally:
            absl.setLevel(level)
        return _convert(converter, representative)


def saved_model_to_tflite(saved_model_dir: str | Path, representative: Iterable[np.ndarray] | None = None) -> bytes:
    """A SavedModel (Keras' `tf_saved_model` export) as a TFLite flatbuffer with its `serving_default`
    signature; with representative data, full-integer int8. An export of several formats converts one
    SavedModel for all of them instead of exporting it again for each (~7 s each here)."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):
        return _convert(tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)), representative)


def _convert(converter, representative: Iterable[np.ndarray] | None) -> bytes:
    import tensorflow as tf

    if representative is not None:
        samples = list(representative)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[None].astype(np.float32)] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def cached_tflite(name: str, convert: Callable[[], bytes]) -> bytes:
    """A TFLite conversion (~8 s, deterministic for its name's key) kept in the cache folder."""
    from trashure.config import default_cache_dir
    from trashure.files import atomic_write_bytes

    path = default_cache_dir() / name
    if path.is_file() and path.stat().st_size > 0:
        return path.read_bytes()
    content = convert()
    try:
        atomic_write_bytes(path, content)
    except OSError:
        pass  # a read-only cache folder only costs the next run the conversion
    return content


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def default_pool_size() -> int:
    """Interpreters run in parallel at most: more than the cores only adds contention (bench/predict_latency.py)."""
    return max(1, os.cpu_count() or 1)


class _Slot:
    """One LiteRT interpreter and the batch size its tensors are allocated for."""

    def __init__(self, kwargs: dict, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(num_threads=threads, **kwargs)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [len(batch), *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()


class LiteRTModel:
    """A TFLite model in the LiteRT interpreter, run on batches of any size, safe to share between threads.

    One interpreter must never run two calls at once (it fails, or worse, hands one caller another's
    output), so each call borrows an interpreter of a small pool: at most `pool_size` calls run in
    parallel, the others wait. The pool grows on demand, so a model used by one thread holds one.
    """

    def __init__(self, content: bytes | str | Path, threads: int | None = None,
                 pool_size: int | None = None) -> None:
        self._kwargs = ({"model_path": str(content)} if isinstance(content, (str, Path))
                        else {"model_content": content})
        self._threads = threads or default_threads()
        self.pool_size = max(1, pool_size or default_pool_size())
        first = _Slot(self._kwargs, self._threads)
        self._input, self._output = first.input, first.output
        self._free: list[_Slot] = [first]
        self._created = 1
        self._available = threading.Condition()

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(self._output["dtype"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self._input["shape"])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self._output["shape"])

    @property
    def input_quantization(self) -> tuple[float, int]:
        return tuple(self._input["quantization"])  # type: ignore[return-value]

    @property
    def output_quantization(self) -> tuple[float, int]:
        return tuple(self._output["quantization"])  # type: ignore[return-value]

    @contextlib.contextmanager
    def _borrow(self):
        with self._available:
            while not self._free and self._created >= self.pool_size:
                self._available.wait()
            slot = self._free.pop() if self._free else None
            if slot is None:
                self._created += 1
        if slot is None:
            try:
                slot = _Slot(self._kwargs, self._threads)
            except BaseException:
                with self._available:
                    self._created -= 1
                    self._available.notify()
                raise
        try:
            yield slot
        finally:
            with self._available:
                self._free.append(slot)
                self._available.notify()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass on a batch already in the model's input dtype."""
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        with self._borrow() as slot:
            return slot.run(batch)

    def run_many(self, images: np.ndarray, batch_size: int = 8,
                 on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), batch_size):
            outputs.append(self.run(images[start:start + batch_size]))
            if on_progress:
                on_progress(min(start + batch_size, len(images)), len(images))
        return np.concatenate(outputs) if outputs else np.empty((0,), np.float32)
