"""A persistent cache of the frozen base's pooled features of each photo.

A photo's features depend only on its bytes, the base weights and the input size, so they are cached on
disk under those: `<cache>/features/<base weights sha256>-<size>/<photo sha256>.npy` (the content's hash,
not the path: a renamed or copied photo is found again). An entry that cannot be read, has the wrong shape
or holds a non-finite value is recomputed, never trusted. The explorer and data health share the cache.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from trashure.config import BASE_WEIGHTS_PATH, IMAGE_SIZE, TrainConfig, default_cache_dir
from trashure.errors import TrashureError
from trashure.weights import sha256_file

FEATURE_DIM = 1280
VIEWS_FORMAT = 2  # 2: each batch of photos decoded once and drawn for all its views in turn


class FeatureCache:
    def __init__(self, folder: Path | None = None, weights_path: Path = BASE_WEIGHTS_PATH,
                 image_size: int = IMAGE_SIZE) -> None:
        self.key = f"{sha256_file(weights_path)[:16]}-{image_size}"
        self.folder = Path(folder or default_cache_dir() / "features") / self.key
        self.weights_path, self.image_size = Path(weights_path), image_size

    def _path(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.npy"

    def get(self, sha: str) -> np.ndarray | None:
        """The cached features, or None when missing, unreadable or not a finite (1280,) vector."""
        try:
            value = np.load(self._path(sha), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if value.shape != (FEATURE_DIM,) or not np.all(np.isfinite(value)):
            return None
        return value.astype(np.float32)

    def put(self, sha: str, features: np.ndarray) -> None:
        from trashure.files import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, np.asarray(features, np.float32), allow_pickle=False)
        try:
            atomic_write_bytes(self._path(sha), buf.getvalue())
        except OSError:
            pass  # a read-only cache only costs the next caller the computation


def pooled_features(paths: Sequence[str | Path], cache: FeatureCache | None = None, batch_size: int = 16,
                    on_progress: Callable[[int, int], None] | None = None,
                    shas: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(n, 1280) pooled MobileNetV2 features of the photos, from the cache where they are there, and the
    sha256 of each photo (given by a caller that has them, e.g. from the fingerprints, else hashed now).
    TensorFlow loads only when some photo is not cached yet."""
    cache = cache or FeatureCache()
    if shas is None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            shas = list(pool.map(sha256_file, paths))
    shas = list(shas)
    out = np.zeros((len(paths), FEATURE_DIM), np.float32)
    missing = []
    for i, sha in enumerate(shas):
        cached = cache.get(sha)
        if cached is None:
            missing.append(i)
        else:
            out[i] = cached
    if missing:
        _compute(paths, shas, missing, out, cache, batch_size, on_progress)
    elif on_progress:
        on_progress(len(paths), len(paths))
    return out, shas


def _compute(paths, shas, missing, out, cache: FeatureCache, batch_size: int, on_progress) -> None:
    from trashure.images import load_array
    from trashure.model import build_model
    from trashure.training.views import frozen_runner

    runner = frozen_runner(build_model(weights_path=cache.weights_path), 0, cache.weights_path)
    done = len(paths) - len(missing)
    decode = ThreadPoolExecutor(max_workers=4)  # Pillow releases the GIL: decoding uses every core
    for start in range(0, len(missing), batch_size):
        chunk = missing[start:start + batch_size]
        try:
            pixels = list(decode.map(lambda i: load_array(paths[i], cache.image_size), chunk))
            batch = np.stack(pixels).astype(np.float32)
        except TrashureError:
            batch = None
        if batch is None:  # one unreadable photo: the others of the chunk still count
            for i in chunk:
                try:
                    out[i] = runner.run(load_array(paths[i], cache.image_size)[None].astype(np.float32))[0]
                    cache.put(shas[i], out[i])
                except TrashureError:
                    out[i] = np.nan
        else:
            features = runner.run(batch)
            for i, f in zip(chunk, features):
                out[i] = f
                cache.put(shas[i], f)
        done += len(chunk)
        if on_progress:
            on_progress(done, len(paths))
    decode.shutdown()


VIEW_SETTINGS = ("seed", "view_draw", "image_size", "augment_flip", "augment_rotation_degrees", "augment_brightness",
                 "augmented_views", "clean_view", "paste_probability", "paste_min_scale", "paste_widen",
                 "paste_perspective", "paste_shading_probability", "balanced_pastes", "scene_probability",
                 "texture_probability", "frame_paste_probability", "textures",
                 "photo_noise", "grayscale_probability", "closeup_probability", "distractor_probability",
                 "amplitude_mix_probability", "validation_views", "val_fraction", "test_fraction")


def views_key(photo_shas: dict[str, list[str]], config: TrainConfig, blocks: int,
              weights_path: Path = BASE_WEIGHTS_PATH) -> str:
    """What a fast run's cached views depend on: every photo's bytes in each part, in order, the base
    weights, the cut, TensorFlow's version and the settings that make the views, and nothing else (the
    head's learning rate, epochs or patience do not change them)."""
    import tensorflow as tf

    settings = {name: getattr(config, name) for name in VIEW_SETTINGS}
    # VIEWS_FORMAT changes when the same settings start to make other views (e.g. another order of draws).
    text = repr((sorted(photo_shas.items()), sha256_file(weights_path), blocks, tf.__version__, settings,
                 VIEWS_FORMAT))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ViewCache:
    """A fast run's extracted views (train / val / test arrays) on disk, for the next run with other head
    settings. The most recent `keep` entries are kept; a file that cannot be read whole is recomputed."""

    def __init__(self, folder: Path | None = None, keep: int = 3) -> None:
        self.folder = Path(folder or default_cache_dir() / "views")
        self.keep = keep

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in ("train", "val", "test")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        if not all(np.all(np.isfinite(a[:1])) for a in arrays.values()):
            return None
        path.touch()  # recently used
        return arrays

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        import os
        import tempfile

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".npz.tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, self.folder / f"{key}.npz")
        except OSError:
            return  # no room or read-only: the next run computes them again
        entries = sorted(self.folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[self.keep:]:
            old.unlink(missing_ok=True)
