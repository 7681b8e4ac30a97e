"""Where the fast mode's features phase spends its time: each part timed alone, per photo or per view.

    python bench/features_parts.py [--data ../shared/data/trashnet4] [--photos 320] [--train 1509] [--views 4]

The features phase of a fast + fine-tune run decodes every photo, finds the board mask of each training photo,
makes K offline views of it (cut-and-paste onto a background, camera noise), passes those views through the
model's Keras augmentation layers, and runs the clean photo and every view through the frozen part of the base
(LiteRT) to the cut. Here each of those parts runs alone on the same `--photos` photos, the recipe's settings
(TrainConfig()), after a warm-up; the offline views both on one thread and on the pool extract() uses. Then
the table adds the parts up for a run of `--train` training photos with `--views` views each, one part after
another: the bench/train_speed.py features phase of the same run is shorter than that sum by what extract()
overlaps (the next batch's offline views are made while this batch runs through the model).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import SHARED_DATA_DIR, TrainConfig  # noqa: E402

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """(what work returns, the seconds it took)."""
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA_DIR / "trashnet4", help="a data folder")
    parser.add_argument("--photos", type=int, default=320, help="photos to time each part on")
    parser.add_argument("--train", type=int, default=1509, help="training photos of the run to add up for")
    parser.add_argument("--views", type=int, default=4, help="augmented views a training photo")
    args = parser.parse_args()
    data = args.data
    if not data.is_dir():
        sys.exit(f"no data folder {data}: give --data")

    import tensorflow as tf

    from trashure.data import decode_records, scan_sources
    from trashure.model import build_augmenter, build_model
    from trashure.offline_augment import augment_view, view_rng
    from trashure.training.views import board_masks, frozen_runner, offline_batch, offline_settings, thread_pool

    config = TrainConfig()
    records = scan_sources(data).records
    records = [records[i] for i in np.random.default_rng(0).permutation(len(records))[:args.photos]]
    n, batch = len(records), 16
    images, decode_s = timed(lambda: decode_records(records))
    pixels = images.astype(np.float32)
    settings = offline_settings(config)
    board_masks(images[:batch], settings)
    masks, mask_s = timed(lambda: board_masks(images, settings))
    alphas = [None if m is None else m.astype(np.float32) / 255 for m in masks]

    def views_one_thread() -> None:
        for i, image in enumerate(images):
            augment_view(image, settings, view_rng(config.seed, i, 1), alphas[i], None, None)

    views_one_thread()
    one_thread_s = timed(views_one_thread)[1]
    with thread_pool() as pool:
        pool_s = timed(lambda: offline_batch(images, np.arange(n), masks, settings, config.seed, 2, pool))[1]
    augmenter = build_augmenter(config)
    augment = tf.function(lambda b: augmenter(b, training=True))
    augment(pixels[:batch])
    keras_s = timed(lambda: [augment(pixels[s:s + batch]).numpy() for s in range(0, n, batch)])[1]
    runner = frozen_runner(build_model(), config.fine_tune_blocks)
    runner.run(pixels[:batch])
    litert_s = timed(lambda: [runner.run(pixels[s:s + batch]) for s in range(0, n, batch)])[1]

    views = args.train * args.views
    rows = [("decode a photo", decode_s, args.train),
            ("board mask of a photo", mask_s, args.train),
            (f"offline view, one thread ({one_thread_s / n * 1e3:.1f} ms of CPU)", pool_s, views),
            ("Keras augmentation layers of a view (compiled)", keras_s, views),
            ("frozen part to the cut (LiteRT) of a photo or view", litert_s, args.train + views)]
    print(f"{data.name}: {n} photos timed, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}; added up for "
          f"{args.train} training photos x (1 + {args.views} views)\n")
    print("| part | ms each | how many in the run | seconds in the run |")
    print("|---|---:|---:|---:|")
    total = 0.0
    for name, spent, count in rows:
        each = spent / n
        total += each * count
        print(f"| {name} | {each * 1e3:.2f} | {count:,} | {each * count:.1f} |")
    print(f"| **one after another** | | | **{total:.1f}** |")
    print("\n(offline views: the time on extract()'s thread pool, both cores; the one-thread CPU time in the name)")


if __name__ == "__main__":
    main()
