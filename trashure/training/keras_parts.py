"""What both training modes share: class weights, early stopping, progress, the fine-tuning stage's keep rule and
atomic saving. The batches and callbacks that fit() runs with are in `keras_loop`, which imports Keras."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeAlias

import numpy as np

from trashure.config import TrainConfig
from trashure.errors import TrashureError
from trashure.runs import Run

if TYPE_CHECKING:  # keras loads on first use: importing this module stays cheap
    import keras

Echo = Callable[[str], None]
# Validation data as fit() takes it: (inputs, one-hot labels), or batches of them.
Validation: TypeAlias = "tuple[np.ndarray, np.ndarray] | keras.utils.PyDataset"
HISTORY_FIELDS = ["stage", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
FROZEN_STAGE, FINE_TUNE_STAGE = "frozen", "fine-tune"


class TrainingCancelled(TrashureError):
    """Cancel was requested for the run."""


def one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[labels]


def class_weights(labels: np.ndarray, n_classes: int, how: str) -> np.ndarray:
    """Per-class loss weights: 'balanced' gives every class the same total weight (n / (k * n_c)), so an
    imbalanced merge (trashnet4 is 60% `other`) does not teach the model to answer `other`."""
    if how == "none":
        return np.ones(n_classes, np.float32)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def photo_weights(labels: np.ndarray, sources: np.ndarray, n_classes: int, how: str) -> np.ndarray:
    """Each training photo's loss weight. 'balanced' and 'none' are class_weights' per photo.
    'balanced_by_source' keeps every class's total weight as 'balanced' does and shares it between the source
    folders that have the class in proportion to the square root of their photos of it, so that a large folder
    of one kind of photo (cans-web's product shots of cans) weighs less against the other sources' photos of
    that class, as domain-balanced batches do in domain generalisation (Gulrajani & Lopez-Paz, 2021). Not
    equal shares: a folder with a single photo of a class would carry a third of that class."""
    if how != "balanced_by_source":
        return class_weights(labels, n_classes, how)[labels]
    weights = np.zeros(len(labels))
    present = np.unique(labels)
    for label in present:
        in_class = labels == label
        names, counts = np.unique(sources[in_class], return_counts=True)
        shares = np.sqrt(counts) / np.sqrt(counts).sum()
        per_photo = dict(zip(names, len(labels) / len(present) * shares / counts))
        weights[in_class] = [per_photo[name] for name in sources[in_class]]
    return weights.astype(np.float32)


def phase(run: Run | None, echo: Echo, name: str, message: str) -> None:
    echo(message)
    if run is not None:
        run.update_status(phase=name, message=message, phase_progress=0.0, phase_started_unix=time.time())


def progress_printer(run: Run | None, echo: Echo, label: str) -> Callable[[int, int], None]:
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.time()
        if now - state["last"] > 2.0 or done == total:
            state["last"] = now
            echo(f"  {label}: {done}/{total} ({100 * done / max(total, 1):.0f}%)")
            if run is not None:
                run.update_status(phase_progress=done / max(total, 1))
                if run.cancel_requested:
                    raise TrainingCancelled(f"cancelled while {label}")

    return report


def save_model_atomic(model: keras.Model, path: Path, classes: Sequence[str] | None = None) -> None:
    """Save to a temporary .keras file beside path, then rename: path is never half-written. With classes,
    the class list is sealed inside the file, so no card can rename its outputs."""
    from trashure.modelfile import seal_facts

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.keras")
    try:
        model.save(tmp)
        if classes:
            seal_facts(tmp, {"classes": list(classes), "input_size": int(model.input_shape[1])})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def early_stopping(config: TrainConfig, patience: int | None = None) -> keras.callbacks.EarlyStopping:
    """The recipe's EarlyStopping: val_loss, patience 3, best weights restored when training ends
    (Keras 3 restores them whether or not it stopped early), so the final model is the best-val_loss one."""
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True,
                                         patience=config.patience if patience is None else patience)


def check_cancel(run: Run | None) -> None:
    if run is not None and run.cancel_requested:
        raise TrainingCancelled("cancelled during training")


def averaged_note(config: TrainConfig) -> str:
    return ", keeping the mean of the epochs' weights" if config.fine_tune_average_weights else ""


def weight_average(variables: Sequence[keras.Variable]) -> keras.callbacks.Callback:
    """A callback that keeps the running mean of `variables` at the end of every epoch; apply() writes the
    mean into them (stochastic weight averaging over the epochs run)."""
    import keras

    class WeightAverage(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.total: list[np.ndarray] | None = None
            self.count = 0

        def on_epoch_end(self, epoch, logs=None):
            values = [np.asarray(v.numpy(), np.float64) for v in variables]
            self.total = values if self.total is None else [t + v for t, v in zip(self.total, values)]
            self.count += 1

        def apply(self) -> None:
            for variable, total in zip(variables, self.total or []):
                variable.assign((total / self.count).astype(variable.dtype))

    return WeightAverage()


def _evaluate(trainer, val) -> list[float]:
    # val: (inputs, labels) arrays, or batches of photos streamed from disk.
    out = (trainer.evaluate(*val, verbose=0, batch_size=64) if isinstance(val, tuple)
           else trainer.evaluate(val, verbose=0))
    return [float(x) for x in out]


# A fine-tuned model is set aside only when a one-sided test says its validation losses are higher with
# p below this: a few hundred validation photos move the mean loss by a few percent from one epoch to the
# next, while across sources the frozen stage scored 6 points below the fine-tuned one on the mean of five
# split seeds (docs/experiments.md), so a narrow loss on validation is noise, not a reason to drop the stage.
KEEP_ALPHA = 0.05


def photo_losses(trainer: keras.Model, val: Validation) -> np.ndarray:
    """Each validation photo's cross-entropy (what val_loss averages) under the trainer's weights now."""
    batches = [val[:2]] if isinstance(val, tuple) else (val[i][:2] for i in range(len(val)))
    losses = []
    for inputs, onehot in batches:
        probabilities = np.asarray(trainer.predict(inputs, batch_size=64, verbose=0), np.float64)
        losses.append(-np.log(np.clip((probabilities * np.asarray(onehot)).sum(1), 1e-7, 1.0)))
    return np.concatenate(losses)


def worse_p_value(after: np.ndarray, before: np.ndarray) -> float:
    """The p-value of "after's losses are higher than before's, photo by photo" (one-sided paired t-test);
    1 when they are not higher on the mean."""
    from scipy.stats import ttest_rel

    if len(after) < 2 or float(np.mean(after - before)) <= 0:
        return 1.0
    return float(ttest_rel(after, before, alternative="greater").pvalue)


def run_second_stage(model: keras.Model, trainer: keras.Model, val: Validation, config: TrainConfig, history: list,
                     callback: keras.callbacks.Callback, batches: Callable[[], keras.utils.PyDataset],
                     run: Run | None, checkpoint: keras.callbacks.Callback | None = None,
                     echo: Echo = print) -> dict[str, Any]:
    """Fit the fine-tuning stage with its own early stopping; with fine_tune_average_weights, the stage's
    model is then the mean of its weights over the epochs run. Whether it replaces the frozen stage's
    weights is config.fine_tune_keep's rule: "if_better", when its validation loss is lower; "unless_worse",
    unless its validation photos' losses are higher beyond chance (see fine_tuned_is_worse)."""
    before = model.get_weights()
    baseline = _evaluate(trainer, val)[0]
    frozen_losses = photo_losses(trainer, val) if config.fine_tune_keep == "unless_worse" else None
    stopper = early_stopping(config, config.fine_tune_patience)
    averager = weight_average(model.trainable_weights) if config.fine_tune_average_weights else None
    callbacks = [stopper, callback] + ([averager] if averager else []) + ([checkpoint] if checkpoint else [])
    trainer.fit(batches(), validation_data=val, epochs=config.fine_tune_epochs, verbose=0, shuffle=False,
                callbacks=callbacks)
    check_cancel(run)
    stage = [h for h in history if h["stage"] == FINE_TUNE_STAGE]
    facts: dict[str, Any] = {"fine_tune_epochs_run": len(stage), "frozen_val_loss": baseline}
    if averager is not None and averager.count:
        averager.apply()
        loss, accuracy = _evaluate(trainer, val)[:2]
        facts.update(fine_tune_averaged_epochs=averager.count, fine_tune_val_accuracy=accuracy)
        echo(f"  the mean of the weights of the {averager.count} fine-tuning epochs: val_loss {loss:.4f}  "
             f"val_acc {accuracy:.4f} (frozen stage: val_loss {baseline:.4f})")
    else:
        loss = min((h["val_loss"] for h in stage), default=np.inf)
    if frozen_losses is None:
        kept = loss < baseline
    else:
        p_worse = worse_p_value(photo_losses(trainer, val), frozen_losses)
        kept = p_worse >= KEEP_ALPHA
        facts["fine_tune_worse_p"] = round(p_worse, 6)
        if loss >= baseline:
            echo(f"  its validation loss is not below the frozen stage's; worse beyond chance: p = {p_worse:.3f} "
                 f"({'kept' if kept else 'the frozen stage kept'})")
    if not kept:
        model.set_weights(before)
    if averager is None:
        facts["fine_tune_best_epoch"] = (stopper.best_epoch + 1) if kept else 0
    return {**facts, "fine_tune_kept": bool(kept), "fine_tune_val_loss": float(loss)}
