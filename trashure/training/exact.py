"""Exact mode: the notebook's loop. Every epoch, augmented photos go through the whole model.

With the reference recipe (`TrainConfig.for_mode("exact")`) this is the notebook verbatim. Trashure's
options apply here too, so that the fast mode can be measured against the same recipe: offline
augmentation is drawn afresh for every photo in every epoch (one photo in 1 + K left clean, as the fast
mode trains on the clean photo and K views), and the fine-tuning stage unfreezes the top blocks and trains
end to end at a low learning rate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trashure.config import TrainConfig
from trashure.runs import Run
from trashure.training.keras_parts import (FINE_TUNE_STAGE, Echo, TrainingCancelled, averaged_note, photo_weights,
                                           early_stopping, one_hot, phase, run_second_stage,
                                           save_model_atomic)
from trashure.training.prepared import PreparedData
from trashure.training.views import (augmented_copies, board_masks, offline_batch, offline_settings, paste_pools,
                                     thread_pool)

if TYPE_CHECKING:  # keras loads on first use: importing this module stays cheap
    import keras

    from trashure.data import Photos

FRESH_VIEWS = 1_000_000  # view numbers of exact mode's per-epoch augmentation, apart from fast mode's


def _in_memory_if_small(rows):
    """The photos decoded once and kept when they fit IN_MEMORY_BYTES (every epoch reads them again);
    beyond that, rows decoded batch by batch every epoch, in bounded memory."""
    from trashure.config import IN_MEMORY_BYTES

    return rows.load() if getattr(rows, "nbytes", 0) <= IN_MEMORY_BYTES and hasattr(rows, "load") else rows


def clean_share(config: TrainConfig) -> float:
    """The share of training photos an exact epoch leaves without offline augmentation: fast mode trains
    on the clean photo and K augmented views of each, so the same recipe trained the exact way shows a
    photo clean one time in 1 + K."""
    return 1 / (1 + config.augmented_views) if config.clean_view and config.augmented_views else 0.0


def _clean_rows(idx: np.ndarray, seed: int, epoch: int, share: float) -> np.ndarray:
    # A draw of its own per photo and epoch, apart from the views' (view_rng), so neither shifts the other.
    if share <= 0:
        return np.zeros(len(idx), bool)
    return np.array([np.random.default_rng([seed, int(i), FRESH_VIEWS + epoch, 1]).random() < share for i in idx],
                    bool)


def _offline_transform(images, config: TrainConfig, labels: np.ndarray | None = None, classes=()):
    """batch, photo indices, epoch -> offline-augmented batch (None when the recipe has no offline step),
    with clean_share(config) of the photos left as they are. The board masks are found once for photos
    in memory, batch by batch for streamed ones. labels and classes: for the scenes and clutter drawn from
    the training photos of `other`."""
    settings = offline_settings(config)
    if not settings.active:
        return None
    pool = thread_pool()
    share = clean_share(config)
    in_memory = board_masks(images, settings) if isinstance(images, np.ndarray) else None
    scenes, distractors = (paste_pools(images, labels, classes, settings, in_memory) if labels is not None
                           else (None, None))

    def transform(batch, idx, epoch):
        # Masks keyed by row number, as offline_batch numbers photos: streamed or not, the same draws.
        drawn = ~_clean_rows(idx, config.seed, epoch, share)
        out = np.array(batch, copy=True)
        if drawn.any():
            masks = in_memory if in_memory is not None else dict(zip(idx[drawn].tolist(),
                                                                      board_masks(batch[drawn], settings)))
            out[drawn] = offline_batch(batch[drawn], idx[drawn], masks, settings, config.seed, FRESH_VIEWS + epoch,
                                       pool, scenes, distractors=distractors)
        return out
    return transform


def validation_images(data: PreparedData, config: TrainConfig) -> Photos:
    """The validation photos and, with validation_views, their augmented copies, drawn as fast mode does."""
    from trashure.model import build_augmenter

    augmenter = build_augmenter(config) if config.augments else None
    offline = offline_settings(config)
    if not config.validation_views or (augmenter is None and not offline.active):
        return _in_memory_if_small(data.images["val"])
    return augmented_copies(data.images["val"], config.validation_views, augmenter, offline, None, config.seed + 1)


def train_exact(model: keras.Model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                history: list, timings: dict, checkpoint_path: Path | None) -> dict[str, Any]:
    import keras

    from trashure.model import build_augmenter, compile_model, unfreeze_top
    from trashure.training.keras_loop import ArrayBatches, RunCallback, ValAccuracyCheckpoint

    n_classes = len(data.dataset.classes)
    image = keras.Input(model.input_shape[1:], name="image")
    x = build_augmenter(config)(image) if config.augments else image
    trainer = keras.Model(image, model(x), name="trainer")  # shares the model's layers and weights
    compile_model(trainer, config.learning_rate)
    weights = photo_weights(data.labels["train"], data.sources("train"), n_classes, config.class_weighting)
    use_weights = config.class_weighting != "none"
    train_images = _in_memory_if_small(data.images["train"])
    transform = _offline_transform(train_images, config, data.labels["train"], data.dataset.classes)

    def batches(seed: int):
        labels = data.labels["train"]
        return ArrayBatches(train_images, one_hot(labels, n_classes), config.batch_size, seed,
                            weights=weights if use_weights else None, transform=transform)

    val_images = validation_images(data, config)
    val_labels = one_hot(np.tile(data.labels["val"], len(val_images) // max(len(data.labels["val"]), 1)), n_classes)
    val = ArrayBatches(val_images, val_labels, config.batch_size, shuffle=False)
    stopper = early_stopping(config)
    checkpoint = ValAccuracyCheckpoint(
        on_best=(lambda: save_model_atomic(model, checkpoint_path, data.dataset.classes)) if checkpoint_path else None)
    t0 = time.time()
    phase(run, echo, "training", f"training end to end (augmented photos through the frozen base) "
          f"for up to {config.epochs} epochs")
    trainer.fit(batches(config.seed), validation_data=val, epochs=config.epochs, verbose=0,
                callbacks=[stopper, checkpoint, RunCallback(run, config.max_epochs, echo, history)])
    timings["features_s"] = 0.0
    if run is not None and run.cancel_requested:
        raise TrainingCancelled("cancelled during training")
    result = {"best_val_loss_epoch": stopper.best_epoch + 1, "best_val_accuracy_epoch": checkpoint.best_epoch}
    if config.fine_tunes:
        trainable = unfreeze_top(model, config.fine_tune_blocks)
        phase(run, echo, "fine-tuning", f"fine-tuning the top {config.fine_tune_blocks} blocks ({len(trainable)} "
              f"layers with weights) end to end for up to {config.fine_tune_epochs} epochs{averaged_note(config)}")
        compile_model(trainer, config.fine_tune_learning_rate)
        val_arrays = (val_images.astype(np.float32), val_labels) if isinstance(val_images, np.ndarray) else val
        result.update(run_second_stage(
            model, trainer, val_arrays, config, history,
            RunCallback(run, config.max_epochs, echo, history, FINE_TUNE_STAGE),
            lambda: batches(config.seed + 1), run, checkpoint, echo))
    timings["train_s"] = round(time.time() - t0, 3)
    return result
