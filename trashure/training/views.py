"""Views of the training photos through the frozen part of the base, computed once and cached.

View 0 is the clean photo; views 1..K are augmented: first offline (cut-and-paste onto a generated
background, crops and camera noise: `trashure.offline_augment`), then by the model's own Keras
augmentation layers (flip, rotation, brightness). The frozen part runs in the LiteRT interpreter
(XNNPACK), ~3x faster per photo here than TensorFlow's executor, with outputs equal to Keras' within 3e-5.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence

import numpy as np

from trashure.backgrounds import load_textures
from trashure.config import TrainConfig
from trashure.offline_augment import Clutter, OfflineAugment, augment_view, board_mask, view_rng

if TYPE_CHECKING:  # keras and the LiteRT runtime load on first use
    import keras

    from trashure.data import Photos
    from trashure.litert import LiteRTModel


class Runner(Protocol):
    """What extract() runs the views through: the frozen part of the base (a LiteRTModel), or nothing."""

    output_shape: tuple

    def run(self, batch: np.ndarray) -> np.ndarray: ...


def offline_settings(config: TrainConfig) -> OfflineAugment:
    if config.texture_probability > 0:
        load_textures(config.textures)  # a wrong folder fails now, not in a worker thread minutes later
    return OfflineAugment(paste_probability=config.paste_probability, photo_noise=config.photo_noise,
                          scale_range=(config.paste_min_scale, OfflineAugment.scale_range[1]),
                          paste_widen=config.paste_widen, paste_perspective=config.paste_perspective,
                          shading_probability=config.paste_shading_probability, draw=config.view_draw,
                          scene_probability=config.scene_probability,
                          texture_probability=config.texture_probability, textures=config.textures,
                          frame_paste_probability=config.frame_paste_probability,
                          closeup_probability=config.closeup_probability,
                          distractor_probability=config.distractor_probability,
                          amplitude_mix_probability=config.amplitude_mix_probability,
                          grayscale_probability=config.grayscale_probability if config.photo_noise else 0.0)


def thread_pool() -> ThreadPoolExecutor:
    # NumPy and Pillow release the GIL in their heavy loops, so threads use both cores.
    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))


@lru_cache(maxsize=1)
def _thread_pools():
    """The native thread pools loaded in this process, NumPy's BLAS (board_mask's fits) among them. Found
    once: finding them scans every loaded library, 3 ms with TensorFlow loaded, and board_masks runs once a
    batch."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def board_masks(images: np.ndarray, settings: OfflineAugment) -> list[np.ndarray | None]:
    """The object mask (uint8 alpha) of each photo on a plain board, None for the others."""
    if settings.paste_probability <= 0:
        return [None] * len(images)

    def mask(image: np.ndarray) -> np.ndarray | None:
        alpha = board_mask(image)
        return None if alpha is None else (alpha * 255).astype(np.uint8)

    # The photos already share the cores, a thread each: OpenBLAS's own threads on board_mask's small
    # fits only spin (measured: 16 ms of CPU a photo, 6 ms with one BLAS thread; the same masks).
    with _thread_pools().limit(limits=1, user_api="blas"), thread_pool() as pool:
        return list(pool.map(mask, images))


def scene_pool(images: np.ndarray, labels: np.ndarray, masks: list, classes: Sequence[str], settings: OfflineAugment,
               name: str = "other") -> np.ndarray | None:
    """Training photos of `other` that are not on a plain board: real scenes to paste objects onto.
    A class-free scene is the only safe background: a can pasted onto a photo of a bottle would be two
    labels in one photo."""
    if settings.scene_probability <= 0 or name not in classes:
        return None
    keep = [i for i, m in enumerate(masks) if m is None and labels[i] == list(classes).index(name)]
    return images[keep] if keep else None


def distractor_pool(images: np.ndarray, labels: np.ndarray, masks: list, classes: Sequence[str],
                    settings: OfflineAugment, name: str = "other") -> Clutter | None:
    """Training photos of `other` on a plain board with their masks: objects to paste as clutter. Only a
    class-free object is safe clutter: a bottle beside a can would be two labels in one photo."""
    if settings.distractor_probability <= 0 or name not in classes:
        return None
    target = list(classes).index(name)
    pairs = [(images[i], m) for i, m in enumerate(masks) if m is not None and labels[i] == target]
    return pairs or None


def paste_pools(train: Photos, labels: np.ndarray, classes: Sequence[str], settings: OfflineAugment,
                masks: list | None = None) -> tuple[np.ndarray | None, Clutter | None]:
    """The real scenes pasted objects may land on (training photos of `other` off the board) and the
    clutter pasted beside them (objects of `other` cut from their boards), decoded from the training photos
    (an array or PhotoRows); None for each the settings do not use. masks: every training photo's board
    mask when already found (else found here for the photos of `other`)."""
    if (settings.scene_probability <= 0 and settings.distractor_probability <= 0) or "other" not in classes:
        return None, None
    rows = np.flatnonzero(labels == list(classes).index("other"))
    pixels = train[rows]
    masks = [masks[i] for i in rows] if masks is not None else board_masks(pixels, settings)
    return (scene_pool(pixels, labels[rows], masks, classes, settings),
            distractor_pool(pixels, labels[rows], masks, classes, settings))


def all_board_masks(images: Photos, settings: OfflineAugment, batch_size: int = 64) -> list[np.ndarray | None]:
    """board_masks of every photo of images (an array or PhotoRows), decoded a batch at a time."""
    return [mask for batch in batches_of(images, batch_size) for mask in board_masks(batch, settings)]


def batches_of(images: Photos, batch_size: int) -> Iterator[np.ndarray]:
    """images (an array of photos, or PhotoRows that decode as they go) batch_size rows at a time."""
    if hasattr(images, "batches"):
        return images.batches(batch_size)
    return (images[start:start + batch_size] for start in range(0, len(images), batch_size))


def balanced_paste_scale(masks: list, labels: np.ndarray) -> np.ndarray:
    """Per photo, the factor on paste_probability that pastes every class's photos as often as those of the
    class whose photos are cut out of their boards least often (classes with none cut out do not count)."""
    cut = np.array([m is not None for m in masks])
    rates = {int(c): float(cut[labels == c].mean()) for c in np.unique(labels)}
    floor = min((r for r in rates.values() if r > 0), default=1.0)
    return np.array([floor / rates[int(c)] if rates[int(c)] > 0 else 1.0 for c in labels], np.float32)


def offline_batch(images: np.ndarray, indices: np.ndarray, masks: list, settings: OfflineAugment, seed: int,
                  view: int, pool: ThreadPoolExecutor, scenes: np.ndarray | None = None,
                  first_index: int = 0, distractors: Clutter | None = None,
                  paste_scale: np.ndarray | None = None) -> np.ndarray:
    """Offline-augmented copies of images (rows of the photos numbered `indices`), reproducible by view.
    first_index: the number of the first row in the whole list, when images are a shard of it. paste_scale:
    per row, a factor on settings.paste_probability (see balanced_paste_scale)."""
    def one(args):
        image, i = args
        alpha = masks[i]
        own = settings if paste_scale is None else dataclasses.replace(
            settings, paste_probability=settings.paste_probability * float(paste_scale[i]))
        return augment_view(image, own, view_rng(seed, first_index + int(i), view, settings.draw),
                            None if alpha is None else alpha.astype(np.float32) / 255, scenes, distractors)

    return np.stack(list(pool.map(one, zip(images, indices))))


def frozen_runner(model: keras.Model, fine_tune_blocks: int = 0, weights_path: Path | None = None) -> LiteRTModel:
    """The frozen part of the model as a LiteRT model: image (0-255) -> pooled features, or -> the
    activations at the cut when the top blocks are to be fine-tuned. The conversion (~8 s) is cached,
    keyed by the base weights' sha256, the TensorFlow version, the input size and the cut."""
    import tensorflow as tf

    from trashure.config import BASE_WEIGHTS_PATH
    from trashure.litert import LiteRTModel, cached_tflite, to_tflite
    from trashure.model import build_feature_extractor, cut_layer, split_at_cut
    from trashure.weights import sha256_file

    weights = Path(weights_path or BASE_WEIGHTS_PATH)
    key = f"{sha256_file(weights)[:16]}-tf{tf.__version__}-{model.input_shape[1]}"
    if fine_tune_blocks <= 0:
        return LiteRTModel(cached_tflite(f"mobilenetv2_features-{key}.tflite",
                                         lambda: to_tflite(build_feature_extractor(model), signature=False)))
    name = f"mobilenetv2_cut-{cut_layer(model, fine_tune_blocks)}-{key}.tflite"
    return LiteRTModel(cached_tflite(name, lambda: to_tflite(split_at_cut(model, fine_tune_blocks)[0],
                                                            signature=False)))


def extract(runner: Runner, images: Photos, views: int = 0, augmenter: keras.Sequential | None = None,
            offline: OfflineAugment | None = None, masks: list | None = None, seed: int = 0, batch_size: int = 16,
            dtype: type[np.floating] = np.float32,
            on_progress: Callable[[int, int], None] | None = None, scenes: np.ndarray | None = None,
            clean: bool = True, first_index: int = 0, plain_board: list[int] | None = None,
            distractors: Clutter | None = None, paste_scale: np.ndarray | None = None) -> np.ndarray:
    """The runner's outputs for every photo and view: shape (1 + views, n, *output) where view 0 is the
    clean photo, or (views, n, *output) of the augmented views alone when clean is False.

    images: an array of photos or PhotoRows (decoded batch by batch, once for all its views: memory holds
    one batch of pixels and the outputs). masks: the board masks when known, else found batch by batch
    (and counted in plain_board[0]). first_index: the number of images[0] in the whole list, when images
    are one worker's shard of it."""
    import tensorflow as tf

    first = 0 if clean else 1
    n = len(images)
    total, done = n * (1 + views - first), 0
    # A compiled augmenter runs ~30% faster than calling the Keras layers eagerly batch by batch.
    augment = tf.function(lambda b: augmenter(b, training=True)) if views and augmenter is not None else None
    use_offline = bool(views and offline is not None and offline.active)
    out = np.empty((1 + views - first, n, *runner.output_shape[1:]), dtype)
    batches = batches_of(images, batch_size)

    def offline_views(start: int, pixels: np.ndarray, pool: ThreadPoolExecutor) -> list[np.ndarray]:
        """The batch's views before the Keras layers: view 0 clean, then the offline-augmented ones."""
        if not use_offline:
            return [pixels] * (1 + views - first)
        batch_masks = masks[start:start + len(pixels)] if masks is not None else board_masks(pixels, offline)
        if plain_board is not None and masks is None:
            plain_board[0] += sum(m is not None for m in batch_masks)
        scale = None if paste_scale is None else paste_scale[start:start + len(pixels)]
        return [pixels if view == 0 else offline_batch(pixels, np.arange(len(pixels)), batch_masks, offline, seed,
                                                        view, pool, scenes, first_index + start, distractors, scale)
                for view in range(first, 1 + views)]

    def through_model(start: int, batch_views: list[np.ndarray]) -> None:
        nonlocal done
        for view, batch in zip(range(first, 1 + views), batch_views):
            batch = batch.astype(np.float32)
            if view > 0 and augment is not None:
                batch = augment(batch).numpy()
            out[view - first, start:start + len(batch)] = runner.run(batch)
            done += len(batch)
            if on_progress:
                on_progress(done, total)

    # The offline views of the next batch are made (NumPy and Pillow, in threads) while this batch runs
    # through the Keras layers and the frozen base: the two overlap rather than take turns on the cores.
    # The Keras layers still see the batches in order, so the views are the same as made one by one.
    with thread_pool() as pool, ThreadPoolExecutor(max_workers=1) as ahead:
        pending = None
        for start, pixels in zip(range(0, n, batch_size), batches):
            job = (start, ahead.submit(offline_views, start, pixels, pool))
            if pending is not None:
                through_model(pending[0], pending[1].result())
            pending = job
        if pending is not None:
            through_model(pending[0], pending[1].result())
    return out


def augmented_copies(images: np.ndarray, views: int, augmenter: keras.Sequential | None = None,
                     offline: OfflineAugment | None = None, masks: list | None = None, seed: int = 0) -> np.ndarray:
    """The photos followed by `views` augmented copies of them, as extract() makes them, as float32 pixels:
    for the exact mode, which feeds pixels rather than cached features."""
    class Identity:
        output_shape = (None, *images.shape[1:])

        @staticmethod
        def run(batch):
            return batch

    return extract(Identity(), images, views, augmenter, offline, masks, seed).reshape(-1, *images.shape[1:])
