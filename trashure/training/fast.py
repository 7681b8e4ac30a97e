"""Fast mode: the frozen part of the base runs once per cached view; training runs on what it gave.

Stage 1 (frozen base) trains the head on the pooled features of every view. Stage 2 (fine-tuning, when
asked) caches the activations at the cut below the top blocks instead, and trains those blocks and the
head on them at a low learning rate: the same model the exact mode trains, without running the frozen
blocks again every epoch. BatchNorm stays in inference mode, so a view's activations at the cut never
change and the cache stays valid.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trashure.config import TrainConfig
from trashure.runs import Run
from trashure.training.keras_parts import (FINE_TUNE_STAGE, Echo, averaged_note, check_cancel, photo_weights,
                                           early_stopping, one_hot, phase, progress_printer,
                                           run_second_stage)
from trashure.training.distribute import WorkerRole
from trashure.training.drop_block import block_dropper, chained
from trashure.training.mixup import batch_mixer
from trashure.training.prepared import PreparedData
from trashure.training.style_mix import style_mixer
from trashure.training.views import (all_board_masks, balanced_paste_scale, extract, frozen_runner, offline_settings,
                                     paste_pools)

if TYPE_CHECKING:  # keras loads on first use: importing this module stays cheap
    import keras


STEPS_PER_EXECUTION = 16  # measured: a head epoch on trashnet4's cached views 0.61 s -> 0.43 s, same losses


def steps_per_execution(config: TrainConfig) -> int:
    # Several steps per call compile into a loop that the multi-worker collectives cannot run in.
    return 1 if config.strategy == "multiworker" else STEPS_PER_EXECUTION


def describe_views(views: int, clean: bool = True) -> str:
    if views == 0:
        return "the clean photo"
    return ("the photo + " if clean else "") + f"{views} augmented view{'s' * (views > 1)}"


def _cached_views(model, images, train_labels: np.ndarray, classes, config: TrainConfig, run: Run | None,
                  echo: Echo, weights_path: Path | None, blocks: int,
                  first: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """The views of every photo of images (part -> pixels: all of a split, or one worker's shard whose first
    rows are numbered `first`): train (1 + K, n, ...), val (1 + V, n, ...) and test (n, ...)."""
    from trashure.model import build_augmenter

    first = first or {"train": 0, "val": 0}
    augmenter = build_augmenter(config) if config.augments else None
    offline = offline_settings(config)
    views = config.augmented_views if (augmenter is not None or offline.active) else 0
    n_train = len(images["train"])
    phase(run, echo, "features", f"running the frozen base on {n_train} training photos "
          f"({describe_views(views, config.clean_view)}), {len(images['val'])} validation and "
          f"{len(images['test'])} test photos")
    runner = frozen_runner(model, blocks, weights_path)
    store = np.float16 if blocks else np.float32  # activations at the cut are large; float16 halves them
    scenes, distractors = paste_pools(images["train"], train_labels, classes, offline) if views else (None, None)
    plain_board = [0]
    masks, scale = _balanced_pastes(images["train"], train_labels, classes, offline, echo) if (
        views and config.balanced_pastes and offline.paste_probability > 0) else (None, None)
    if masks is not None:
        plain_board[0] = sum(m is not None for m in masks)
    train = extract(runner, images["train"], views, augmenter, offline, seed=config.seed, dtype=store,
                    on_progress=progress_printer(run, echo, "computing features"), scenes=scenes,
                    clean=config.clean_view or not views, first_index=first["train"], plain_board=plain_board,
                    distractors=distractors, masks=masks, paste_scale=scale)
    if views and offline.paste_probability > 0:
        onto = ("generated backgrounds" if offline.texture_probability <= 0 else
                f"photographed surfaces ({offline.texture_probability:.0%}) and generated backgrounds")
        echo(f"  {plain_board[0]} of {n_train} training photos are on a plain board (cut out and pasted onto {onto})")
    val_views = config.validation_views if views else 0
    # Validation views use other random draws than training's (seed + 1).
    val = extract(runner, images["val"], val_views, augmenter, offline, seed=config.seed + 1, scenes=scenes,
                  first_index=first["val"], distractors=distractors)
    return {"train": train, "val": val, "test": extract(runner, images["test"])[0]}


def _balanced_pastes(train, labels: np.ndarray, classes, offline, echo: Echo) -> tuple[list, np.ndarray]:
    """Every training photo's board mask, and its factor on the paste probability (balanced_paste_scale)."""
    masks = all_board_masks(train, offline)
    scale = balanced_paste_scale(masks, labels)
    echo("  pastes balanced across classes (the paste probability times " + ", ".join(
        f"{classes[int(c)]} {scale[labels == c][0]:.2f}" for c in np.unique(labels)) + ")")
    return masks, scale


def _flat_val(views: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**views, "val": views["val"].reshape(-1, *views["val"].shape[2:])}


def _shard_bounds(n: int, role: WorkerRole) -> tuple[int, int]:
    return n * role.index // role.count, n * (role.index + 1) // role.count


def _sharded_views(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                   weights_path: Path | None, blocks: int, role: WorkerRole, folder: Path) -> dict[str, np.ndarray]:
    """Each worker extracts the views of its share of the photos (decoding only those) into a shared
    folder; then every worker reads all the shares."""
    from trashure.training.distribute import wait_for_files

    bounds = {part: _shard_bounds(len(data.split.part(part)), role) for part in ("train", "val", "test")}
    echo(f"  worker {role.index + 1} of {role.count}: extracting the views of its share of the photos")
    images = {part: data.images[part].subset(*bounds[part]) for part in bounds}
    labels = data.labels["train"][slice(*bounds["train"])]
    mine = _cached_views(model, images, labels, data.dataset.classes, config, run, echo, weights_path, blocks,
                         first={part: bounds[part][0] for part in ("train", "val")})
    folder.mkdir(parents=True, exist_ok=True)
    shard = folder / f"shard-{role.index}-of-{role.count}.npz"
    tmp = shard.with_name(f".{shard.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **mine)
    os.replace(tmp, shard)
    shards = [folder / f"shard-{i}-of-{role.count}.npz" for i in range(role.count)]
    wait_for_files(shards)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for path in shards:
        with np.load(path, allow_pickle=False) as stored:
            for name in parts:
                parts[name].append(stored[name])
    return {"train": np.concatenate(parts["train"], axis=1), "val": np.concatenate(parts["val"], axis=1),
            "test": np.concatenate(parts["test"], axis=0)}


def _views_from_cache_or_run(model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
                             weights_path: Path | None, blocks: int,
                             role: WorkerRole | None = None) -> dict[str, np.ndarray]:
    """The run's views from the persistent view cache when an earlier run made the same ones (same photos,
    base, cut and view settings), else extracted now (shared out among the workers of a multi-worker run)
    and kept for the next run."""
    from trashure.config import BASE_WEIGHTS_PATH
    from trashure.features import ViewCache, views_key

    role = role or WorkerRole(0, 1, True)
    shas = {part: data.content_sha256(part) for part in ("train", "val", "test")}
    key = views_key(shas, config, blocks, Path(weights_path or BASE_WEIGHTS_PATH))
    cache = ViewCache()
    cached = cache.get(key)
    if cached is not None:
        phase(run, echo, "features", "the frozen base's views of these photos are cached from an earlier run "
              "with the same view settings: reusing them")
        return cached
    if role.count > 1:
        views = _sharded_views(model, data, config, run, echo, weights_path, blocks, role,
                               cache.folder / f"{key}.shards")
    else:
        views = _cached_views(model, data.images, data.labels["train"], data.dataset.classes, config, run, echo,
                              weights_path, blocks)
    cached = _flat_val(views)
    if role.is_chief:
        cache.put(key, cached)
    return cached


def validation_labels(data: PreparedData, cached_val: np.ndarray) -> np.ndarray:
    """Labels of the validation views (clean photos first, then each augmented view)."""
    return np.tile(data.labels["val"], len(cached_val) // max(len(data.labels["val"]), 1))


def _pooled(top, cached: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pooled features from each part's activations at the cut, through the frozen top (inference)."""
    import tensorflow as tf

    # One traced function for every part and batch size (a fresh one per part retraced on each last batch).
    shape = next(iter(cached.values())).shape[-3:]
    run = tf.function(lambda x: top(x, training=False), input_signature=[tf.TensorSpec([None, *shape], tf.float32)])

    def pool(activations: np.ndarray) -> np.ndarray:
        flat = activations.reshape(-1, *shape)
        out = [run(flat[i:i + 256].astype(np.float32)).numpy() for i in range(0, len(flat), 256)]
        return np.concatenate(out).reshape(*activations.shape[:-3], -1)

    return {part: pool(activations) for part, activations in cached.items()}


def train_fast(model: keras.Model, data: PreparedData, config: TrainConfig, run: Run | None, echo: Echo,
               history: list, timings: dict, weights_path: Path | None = None,
               role: WorkerRole | None = None) -> dict[str, Any]:
    from trashure.model import build_head, classifier_from_cut, compile_model, copy_head_weights, split_at_cut
    from trashure.training.keras_loop import ArrayBatches, RunCallback, ValAccuracyCheckpoint

    n_classes = len(data.dataset.classes)
    blocks = config.fine_tune_blocks if config.fine_tunes else 0
    t0 = time.time()
    cached = _views_from_cache_or_run(model, data, config, run, echo, weights_path, blocks, role)
    top = split_at_cut(model, blocks)[1] if blocks else None
    pooled = _pooled(top, cached) if blocks else cached
    timings["features_s"] = round(time.time() - t0, 3)

    t0 = time.time()
    phase(run, echo, "training", f"training the head for up to {config.epochs} epochs")
    weights = photo_weights(data.labels["train"], data.sources("train"), n_classes, config.class_weighting)
    n_views = pooled["train"].shape[0]
    labels = np.tile(data.labels["train"], n_views)
    val = (pooled["val"], one_hot(validation_labels(data, pooled["val"]), n_classes))
    head = build_head(n_classes, config.dense_units, config.head_dropout)
    compile_model(head, config.learning_rate, steps_per_execution(config))
    stopper, checkpoint = early_stopping(config), ValAccuracyCheckpoint()
    # Every epoch shows every cached view of every training photo once, in a fresh random order.
    head.fit(ArrayBatches(pooled["train"].reshape(-1, pooled["train"].shape[-1]), one_hot(labels, n_classes),
                          config.batch_size, config.seed, weights=np.tile(weights, n_views),
                          mix=batch_mixer(config.mixup_alpha, config.seed + 3)),
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


def fine_tune_on_cut(model: keras.Model, classifier: keras.Model, cached: dict[str, np.ndarray], data: PreparedData,
                     config: TrainConfig, run: Run | None, echo: Echo, history: list,
                     weights: np.ndarray) -> dict[str, Any]:
    """Stage 2: the top blocks and the head train on the cached activations at the cut. weights: each training
    photo's loss weight (photo_weights), the same for each of its views."""
    from trashure.model import compile_model, unfreeze_top
    from trashure.training.keras_loop import ArrayBatches, RunCallback

    n_classes = len(data.dataset.classes)
    trainable = unfreeze_top(model, config.fine_tune_blocks)
    phase(run, echo, "fine-tuning", f"fine-tuning the top {config.fine_tune_blocks} blocks ({len(trainable)} "
          f"layers with weights) and the head for up to {config.fine_tune_epochs} epochs, "
          f"learning rate {config.fine_tune_learning_rate:g}{averaged_note(config)}")
    compile_model(classifier, config.fine_tune_learning_rate, steps_per_execution(config))
    val = (cached["val"].astype(np.float32), one_hot(validation_labels(data, cached["val"]), n_classes))
    n_views = cached["train"].shape[0]
    labels = np.tile(data.labels["train"], n_views)
    return run_second_stage(
        model, classifier, val, config, history, RunCallback(run, config.max_epochs, echo, history, FINE_TUNE_STAGE),
        lambda: ArrayBatches(cached["train"].reshape(-1, *cached["train"].shape[2:]), one_hot(labels, n_classes),
                             config.batch_size, config.seed + 1, weights=np.tile(weights, n_views),
                             photos=len(data.labels["train"]) if config.fine_tune_one_view_per_epoch else None,
                             transform=chained(style_mixer(config.style_mix_probability, config.seed + 2),
                                               block_dropper(config.drop_block_probability, config.seed + 5)),
                             mix=batch_mixer(config.mixup_alpha, config.seed + 4)),
        run, echo=echo)
