"""Fast mode: the frozen part of the base runs once per cached view; training runs on what it gave.

Stage 1 (frozen base) trains the head on the pooled features of every view. Stage 2 (fine-tuning, when
asked) caches the activations at the cut below the top blocks instead, and trains those blocks and the
head on them at a low learning rate: the same model the exact mode trains, without running the frozen
blocks again every epoch. BatchNorm stays in inference mode, so a view's activations at the cut never
change and the cache stays valid.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from trashure.config import TrainConfig
from trashure.runs import Run
from trashure.training.keras_parts import (FINE_TUNE_STAGE, Echo, check_cancel, class_weights, early_stopping,
                                           keras_classes, one_hot, phase, progress_printer, run_second_stage)
from trashure.training.prepared import PreparedData
from trashure.training.views import board_masks, extract, frozen_runner, offline_settings, scene_pool


def describe_views(views: int, clean: bool = True) -> str:
    if views == 0:
        return "the clean photo"
    return ("the photo + " if clean else "") + f"{views} augmented view{'s' * (views > 1)}"


def _cached_views(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                  weights_path: Path | None, blocks: int) -> dict[str, np.ndarray]:
    from trashure.model import build_augmenter

    augmenter = build_augmenter(config) if config.augments else None
    offline = offline_settings(config)
    views = config.augmented_views if (augmenter is not None or offline.active) else 0
    n_train = len(data.images["train"])
    masks = board_masks(data.images["train"], offline) if views else None
    if masks is not None and offline.paste_probability > 0:
        echo(f"  {sum(m is not None for m in masks)} of {n_train} training photos are on a plain board "
             "(cut out and pasted onto generated backgrounds)")
    phase(run, echo, "features", f"running the frozen base on {n_train} training photos "
          f"({describe_views(views, config.clean_view)}), {len(data.images['val'])} validation and "
          f"{len(data.images['test'])} test photos")
    runner = frozen_runner(model, blocks, weights_path)
    store = np.float16 if blocks else np.float32  # activations at the cut are large; float16 halves them
    scenes = (scene_pool(data.images["train"], data.labels["train"], masks, data.dataset.classes, offline)
              if views else None)
    train = extract(runner, data.images["train"], views, augmenter, offline, masks, config.seed, dtype=store,
                    on_progress=progress_printer(run, echo, "computing features"), scenes=scenes,
                    clean=config.clean_view or not views)
    val_views = config.validation_views if views else 0
    val_masks = board_masks(data.images["val"], offline) if val_views else None
    # Validation views use other random draws than training's (seed + 1).
    val = extract(runner, data.images["val"], val_views, augmenter, offline, val_masks, config.seed + 1,
                  scenes=scenes)
    return {"train": train, "val": val.reshape(-1, *val.shape[2:]),
            "test": extract(runner, data.images["test"])[0]}


def _views_from_cache_or_run(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                             weights_path: Path | None, blocks: int) -> dict[str, np.ndarray]:
    """The run's views from the persistent view cache when an earlier run made the same ones (same photos,
    base, cut and view settings), else extracted now and kept for the next run."""
    from trashure.config import BASE_WEIGHTS_PATH
    from trashure.features import ViewCache, views_key
    shas = {part: data.content_sha256(part) for part in ("train", "val", "test")}
    key = views_key(shas, config, blocks, Path(weights_path or BASE_WEIGHTS_PATH))
    cache = ViewCache()
    cached = cache.get(key)
    if cached is not None:
        phase(run, echo, "features", "the frozen base's views of these photos are cached from an earlier run "
              "with the same view settings: reusing them")
        return cached
    cached = _cached_views(model, data, config, run, echo, weights_path, blocks)
    cache.put(key, cached)
    return cached


def validation_labels(data: PreparedData, cached_val: np.ndarray) -> np.ndarray:
    """Labels of the validation views (clean photos first, then each augmented view)."""
    return np.tile(data.labels["val"], len(cached_val) // max(len(data.labels["val"]), 1))


def _pooled(top, activations: np.ndarray) -> np.ndarray:
    """Pooled features from activations at the cut, through the frozen top (inference)."""
    import tensorflow as tf

    run = tf.function(lambda x: top(x, training=False), reduce_retracing=True)  # the last batch is smaller
    flat = activations.reshape(-1, *activations.shape[-3:])
    out = [run(flat[i:i + 256].astype(np.float32)).numpy() for i in range(0, len(flat), 256)]
    return np.concatenate(out).reshape(*activations.shape[:-3], -1)


def train_fast(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
               history: list, timings: dict, weights_path: Path | None = None) -> dict[str, Any]:
    from trashure.model import build_head, classifier_from_cut, compile_model, copy_head_weights, split_at_cut

    ArrayBatches, RunCallback, ValAccuracyCheckpoint = keras_classes()
    n_classes = len(data.dataset.classes)
    blocks = config.fine_tune_blocks if config.fine_tunes else 0
    t0 = time.time()
    cached = _views_from_cache_or_run(model, data, config, run, echo, weights_path, blocks)
    top = split_at_cut(model, blocks)[1] if blocks else None
    pooled = {k: _pooled(top, v) for k, v in cached.items()} if blocks else cached
    timings["features_s"] = round(time.time() - t0, 3)

    t0 = time.time()
    phase(run, echo, "training", f"training the head for up to {config.epochs} epochs")
    weights = class_weights(data.labels["train"], n_classes, config.class_weighting)
    n_views = pooled["train"].shape[0]
    labels = np.tile(data.labels["train"], n_views)
    val = (pooled["val"], one_hot(validation_labels(data, pooled["val"]), n_classes))
    head = build_head(n_classes, config.dense_units)
    compile_model(head, config.learning_rate)
    stopper, checkpoint = early_stopping(config), ValAccuracyCheckpoint()
    # Every epoch shows every cached view of every training photo once, in a fresh random order.
    head.fit(ArrayBatches(pooled["train"].reshape(-1, pooled["train"].shape[-1]), one_hot(labels, n_classes),
                          config.batch_size, config.seed, weights=weights[labels]),
             validation_data=val, epochs=config.epochs, verbose=0, shuffle=False,
             callbacks=[stopper, checkpoint, RunCallback(run, config.max_epochs, echo, history)])
    check_cancel(run)
    copy_head_weights(head, model)
    result = {"best_val_loss_epoch": stopper.best_epoch + 1, "best_val_accuracy_epoch": checkpoint.best_epoch}
    if not blocks:
        timings["train_s"] = round(time.time() - t0, 3)
        # The test photos' probabilities from their cached features through the trained head: the same
        # numbers as the assembled model gives (features agree within 3e-5), without a second pass of the
        # base; `python -m trashure evaluate` re-checks the saved model end to end.
        result["test_probabilities"] = np.asarray(head.predict(pooled["test"], batch_size=256, verbose=0))
        return result

    classifier = classifier_from_cut(model, top)
    result.update(fine_tune_on_cut(model, classifier, cached, data, config, run, echo, history, weights))
    timings["train_s"] = round(time.time() - t0, 3)
    result["test_probabilities"] = np.asarray(classifier.predict(cached["test"], batch_size=64, verbose=0))
    return result


def fine_tune_on_cut(model, classifier, cached: dict[str, np.ndarray], data: PreparedData, config: TrainConfig,
                     run: Run | None, echo: Echo, history: list, weights: np.ndarray) -> dict[str, Any]:
    """Stage 2: the top blocks and the head train on the cached activations at the cut."""
    from trashure.model import compile_model, unfreeze_top

    ArrayBatches, RunCallback, _ = keras_classes()
    n_classes = len(data.dataset.classes)
    trainable = unfreeze_top(model, config.fine_tune_blocks)
    phase(run, echo, "fine-tuning", f"fine-tuning the top {config.fine_tune_blocks} blocks ({len(trainable)} "
          f"layers with weights) and the head for up to {config.fine_tune_epochs} epochs, "
          f"learning rate {config.fine_tune_learning_rate:g}")
    compile_model(classifier, config.fine_tune_learning_rate)
    val = (cached["val"].astype(np.float32), one_hot(validation_labels(data, cached["val"]), n_classes))
    n_views = cached["train"].shape[0]
    labels = np.tile(data.labels["train"], n_views)
    return run_second_stage(
        model, classifier, val, config, history, RunCallback(run, config.max_epochs, echo, history, FINE_TUNE_STAGE),
        lambda: ArrayBatches(cached["train"].reshape(-1, *cached["train"].shape[2:]), one_hot(labels, n_classes),
                             config.batch_size, config.seed + 1, weights=weights[labels]), run)
