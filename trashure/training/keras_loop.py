"""What Keras' fit() runs with in both training modes: the batches (ArrayBatches) and the callbacks that
write the run's history and status (RunCallback) and keep its best model (ValAccuracyCheckpoint).

This module imports Keras: the training code imports it when a run starts, so that importing
`trashure.training` (the dashboard's light pages do, through the launcher) stays cheap."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable

import keras
import numpy as np

from trashure.files import atomic_write_csv
from trashure.runs import Run
from trashure.training.keras_parts import FROZEN_STAGE, HISTORY_FIELDS, Echo

if TYPE_CHECKING:
    from trashure.data import Photos

# transform(batch, indices, epoch): a batch of photos augmented (the exact mode's fresh views).
Transform = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
# mix(batch, labels, weights, indices, epoch) -> (batch, labels, weights): rows mixed (trashure.training.mixup).
Mix = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray, int],
               "tuple[np.ndarray, np.ndarray, np.ndarray | None]"]


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled arrays (photos or cached activations) as float32 batches with per-sample weights,
    reshuffled every epoch. transform(batch, indices, epoch) may augment a batch of photos;
    mix(batch, labels, weights, indices, epoch) may then mix its rows, labels and weights (trashure.training.mixup).

    photos: when inputs are the views of n photos stacked view by view (view v of photo i at row
    v * n + i), each epoch shows every photo once, through one of its views drawn at random (as an
    exact epoch shows every photo once, freshly augmented), rather than every row."""

    def __init__(self, inputs: Photos, labels: np.ndarray, batch_size: int, seed: int | None = None,
                 shuffle: bool = True, weights: np.ndarray | None = None, transform: Transform | None = None,
                 photos: int | None = None, mix: Mix | None = None) -> None:
        super().__init__()
        self.inputs, self.labels, self.batch_size = inputs, labels, batch_size
        self.weights, self.transform, self.mix = weights, transform, mix
        self.rng = np.random.default_rng(seed)
        self.shuffle, self.epoch = shuffle, 0
        if photos is not None and (photos < 1 or len(inputs) % photos):
            raise ValueError(f"{len(inputs)} rows are not views of {photos} photos")
        self.photos = photos
        self.order = self._draw_order() if shuffle else np.arange(len(inputs))

    def _draw_order(self) -> np.ndarray:
        if self.photos is None:
            return self.rng.permutation(len(self.inputs))
        views = len(self.inputs) // self.photos
        order = self.rng.permutation(self.photos)
        return self.rng.integers(0, views, self.photos) * self.photos + order

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        batch = self.inputs[idx]
        if self.transform is not None:
            batch = self.transform(batch, idx, self.epoch)
        batch, labels = batch.astype(np.float32), self.labels[idx]
        weights = None if self.weights is None else self.weights[idx]
        if self.mix is not None:
            batch, labels, weights = self.mix(batch, labels, weights, idx, self.epoch)
        if weights is None:
            return batch, labels
        return batch, labels, weights

    def on_epoch_end(self):
        self.epoch += 1
        if self.shuffle:
            self.order = self._draw_order()

class RunCallback(keras.callbacks.Callback):
    """Writes history.csv and status.json after every epoch, echoes a line, and honours Cancel.
    history is shared by both stages; epochs are numbered on across them."""

    def __init__(self, run: Run | None, total_epochs: int, echo: Echo, history: list[dict[str, Any]],
                 stage: str = FROZEN_STAGE) -> None:
        super().__init__()
        self.run, self.total, self.echo, self.history, self.stage = run, total_epochs, echo, history, stage
        self.offset = len(history)
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
        n = self.offset + epoch + 1
        row = {"stage": self.stage, "epoch": n,
               **{k: float(logs.get(k, float("nan"))) for k in HISTORY_FIELDS[2:6]},
               "seconds": round(time.time() - self.epoch_start, 3)}
        self.history.append(row)
        self.echo(f"epoch {n:>2}/{self.total}  {self.stage:<9} loss {row['loss']:.4f}  "
                  f"acc {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
                  f"val_acc {row['val_accuracy']:.4f}  ({row['seconds']:.1f}s)")
        if self.run is not None:
            atomic_write_csv(self.run.dir / "history.csv", self.history, HISTORY_FIELDS)
            self.run.update_status(epoch=n, stage=self.stage, phase="training")
            if self.run.cancel_requested:
                self.model.stop_training = True

class ValAccuracyCheckpoint(keras.callbacks.Callback):
    """The recipe's ModelCheckpoint(monitor='val_accuracy', save_best_only=True): on_best saves the
    model whenever val_accuracy improves, so even a killed run leaves its best model so far."""

    def __init__(self, on_best: Callable[[], None] | None = None, best: float = -np.inf) -> None:
        super().__init__()
        self.best, self.best_epoch, self.on_best = best, 0, on_best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_accuracy")
        if value is not None and value > self.best:
            self.best, self.best_epoch = float(value), epoch + 1
            if self.on_best:
                self.on_best()
