"""Does fine-tuning every block of MobileNetV2, end to end, do better than the recipe's top 4 blocks?

    python bench/deep_fine_tune/prepare.py            # here: photos and the package's splits -> .devdata
    KERAS_BACKEND=jax python bench/deep_fine_tune/train.py --data .devdata --out DIR [--budget-s 420]

The fast recipe fine-tunes the top blocks on cached activations: on 2 cores that is what keeps a run in
minutes, and it limits how deep the fine-tuning can go. On a GPU the whole model trains on fresh pixels every
step, so depth can be measured. This harness needs no TensorFlow (Keras 3 on JAX: what a lent GPU machine
has) and runs, for each split seed, one shared first stage and then each fine-tuning depth from it:

- stage 1, as the fast recipe: the pooled features of the clean photo and of 4 offline-augmented views
  (the package's cut-and-paste and camera noise, `trashure.offline_augment`, same draws per view), each
  through the model's Keras augmentation once; the head trained on them (Adam 1e-4, EarlyStopping on
  val_loss, patience 3, best weights; class weights balanced);
- stage 2, per depth (`--blocks 4,16`: 16 is every inverted-residual block): unfreeze_top, BatchNorm frozen,
  Adam at the recipe's 5e-5 (`--learning-rate`), `--epochs` epochs, each a random one of the five views of
  every photo with the Keras augmentation on top, the mean of the epochs' weights kept (the recipe's averaging).

Differences from the package's run, the same for every depth: the model looks once (no close-up glimpse),
stage 2 trains on pixels rather than cached activations, a fixed number of epochs and no keep-unless-worse
rule, photos re-encoded as JPEG by prepare.py. So compare depths with each other here, not with the
package's rows. Jobs: in-domain (trashnet4 + mixed4 + cans-web, validation and test per source) and cross
(trashnet4 alone -> all of mixed4), alternating by seed; a job is not started when the budget would be
passed. Each finished row is appended to DIR/rows.jsonl at once. The Keras augmentation is built once a run,
so its random draws carry on from one job to the next and a job's rows can depend on the jobs before it
(trashnet4 -> mixed4 seed 42's first stage: 62.40% in a run that began with the in-domain job, 57.35% run
alone): compare rows of one run, or of runs with the same jobs in the same order.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before NumPy and Keras load; importing this module (the tests do) changes nothing
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the view workers share the cores (see board_masks)
    os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from multiprocessing import get_context  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from trashure.config import TrainConfig  # noqa: E402
from trashure.offline_augment import OfflineAugment, augment_view, board_mask, view_rng  # noqa: E402

CONFIG = TrainConfig()
VIEWS = CONFIG.augmented_views
BATCH = CONFIG.batch_size
PHOTOS: np.ndarray | None = None  # every photo, loaded before the view workers fork (shared, not copied)
OFFLINE: OfflineAugment | None = None


def load_photos(folder: Path, n: int) -> np.ndarray:
    def read(i: int) -> np.ndarray:
        return np.asarray(Image.open(folder / f"{i:05d}.jpg").convert("RGB"))

    with ThreadPoolExecutor(16) as pool:
        return np.stack(list(pool.map(read, range(n))))


def views_of(task: tuple[int, list[int], list[int]]) -> np.ndarray:
    """The offline views 1..VIEWS of some training photos: (photos, VIEWS, 224, 224, 3) uint8. The draws are
    the package's: view_rng(seed, the photo's place in the training part, view)."""
    seed, places, numbers = task
    out = np.empty((len(numbers), VIEWS, *PHOTOS.shape[1:]), np.uint8)
    for k, (place, number) in enumerate(zip(places, numbers)):
        image = PHOTOS[number]
        alpha = board_mask(image)
        if alpha is not None:  # the package keeps masks as uint8
            alpha = (alpha * 255).astype(np.uint8).astype(np.float32) / 255
        for view in range(1, VIEWS + 1):
            out[k, view - 1] = augment_view(image, OFFLINE, view_rng(seed, place, view), alpha)
    return out


def ask_views(pool, seed: int, train: list[int], chunk: int = 32):
    tasks = [(seed, list(range(s, min(s + chunk, len(train)))), train[s:s + chunk]) for s in range(0, len(train), chunk)]
    return pool.map_async(views_of, tasks)


def part_scores(probabilities: np.ndarray, labels: np.ndarray, sources: list[str], classes: list[str],
                confusion: bool = False) -> dict:
    """Accuracy overall and per source, the loss; with confusion, the matrix and the recall per class."""
    from trashure.evaluation import metrics_from_probabilities, metrics_per_source

    whole = metrics_from_probabilities(probabilities, labels, classes)
    out = {"all": whole["accuracy"],
           **{s: m["accuracy"] for s, m in metrics_per_source(probabilities, labels, sources, classes).items()},
           "loss": whole["loss"]}
    if confusion:
        out["confusion"] = whole["confusion_matrix"]
        out["recall"] = {c: m["recall"] for c, m in whole["per_class"].items() if m["support"]}
    return out


class Harness:
    """The Keras side: models, the two stages and the scores (Keras imported only after the workers fork)."""

    def __init__(self, photos: list[dict], classes: list[str], epochs: int, learning_rate: float):
        import keras

        from trashure import model as model_lib

        self.keras, self.lib = keras, model_lib
        self.photos, self.classes, self.epochs = photos, classes, epochs
        self.learning_rate = learning_rate
        self.labels = np.array([p["label"] for p in photos])
        self.augmenter = model_lib.build_augmenter(CONFIG)

    def one_hot(self, numbers) -> np.ndarray:
        return np.eye(len(self.classes), dtype=np.float32)[self.labels[numbers]]

    def class_weight(self, numbers) -> dict[int, float]:
        # keras_parts.class_weights(..., "balanced"), which cannot be imported where TensorFlow is not
        counts = np.bincount(self.labels[numbers], minlength=len(self.classes))
        present = counts > 0
        return {c: float(len(numbers) / (present.sum() * counts[c])) if counts[c] else 0.0
                for c in range(len(self.classes))}

    def predict(self, model, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(pixels.astype(np.float32), batch_size=128, verbose=0))

    def augmented(self, pixels: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(self.augmenter(pixels[s:s + 256].astype(np.float32), training=True))
                               for s in range(0, len(pixels), 256)])

    def stage_one(self, model, views: np.ndarray, train: list[int], val: list[int]) -> dict:
        keras = self.keras
        extractor = self.lib.build_feature_extractor(model)
        clean = PHOTOS[train]
        features = [self.predict(extractor, clean)] + [
            self.predict(extractor, self.augmented(views[:, v])) for v in range(VIEWS)]
        x, y = np.concatenate(features), np.tile(self.one_hot(train), (1 + VIEWS, 1))
        head = self.lib.build_head(len(self.classes), CONFIG.dense_units)
        self.lib.compile_model(head, CONFIG.learning_rate, steps_per_execution=16)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=CONFIG.patience, restore_best_weights=True)
        history = head.fit(x, y, batch_size=BATCH, epochs=CONFIG.epochs, shuffle=True, verbose=0,
                           validation_data=(self.predict(extractor, PHOTOS[val]), self.one_hot(val)),
                           class_weight=self.class_weight(train), callbacks=[stop])
        self.lib.copy_head_weights(head, model)
        return {"epochs": len(history.history["loss"])}

    def stage_two(self, model, blocks: int, views: np.ndarray, train: list[int], seed: int) -> dict:
        keras = self.keras
        trainable = self.lib.unfreeze_top(model, blocks)
        image = keras.Input(model.input_shape[1:])
        trainer = keras.Model(image, model(self.augmenter(image)))
        self.lib.compile_model(trainer, self.learning_rate)
        rng = np.random.default_rng(seed)
        n = len(train) - len(train) % BATCH  # whole batches: one compiled step shape
        every = np.concatenate([PHOTOS[train][:, None], views], axis=1)  # view 0: the clean photo
        total, losses = None, []
        for _ in range(self.epochs):
            order = rng.permutation(len(train))[:n]
            x = every[order, rng.integers(0, 1 + VIEWS, n)]  # uint8: the model casts, a quarter of the copying
            h = trainer.fit(x, self.one_hot(np.array(train)[order]), batch_size=BATCH, epochs=1,
                            shuffle=False, verbose=0, class_weight=self.class_weight(train))
            losses.append(float(h.history["loss"][-1]))
            weights = [np.asarray(w, np.float64) for w in model.get_weights()]
            total = weights if total is None else [t + w for t, w in zip(total, weights)]
        model.set_weights([(t / self.epochs).astype(np.float32) for t in total])
        return {"trainable_layers": len(trainable), "learning_rate": self.learning_rate,
                "fine_tune_epochs": self.epochs, "train_loss": losses}

    def scores(self, model, parts: dict[str, list[int]]) -> dict:
        return {part: part_scores(self.predict(model, PHOTOS[numbers]), self.labels[numbers],
                                  [self.photos[n]["source"] for n in numbers], self.classes, part == "heldout")
                for part, numbers in parts.items() if part != "train" and numbers}

    def run_job(self, kind: str, seed: int, parts: dict, views: np.ndarray, blocks: list[int], emit) -> None:
        self.keras.utils.set_random_seed(seed)
        model = self.lib.build_model(self.classes, CONFIG.dense_units)
        t0 = time.perf_counter()
        first = self.stage_one(model, views, parts["train"], parts["val"])
        snapshot = model.get_weights()
        emit({"kind": kind, "seed": seed, "blocks": 0, **first, "scores": self.scores(model, parts),
              "wall_s": time.perf_counter() - t0})
        for depth in blocks:
            t1 = time.perf_counter()
            model.set_weights(snapshot)
            self.keras.utils.set_random_seed(seed)
            second = self.stage_two(model, depth, views, parts["train"], seed)
            emit({"kind": kind, "seed": seed, "blocks": depth, **second, "scores": self.scores(model, parts),
                  "wall_s": time.perf_counter() - t1})
            self.lib.base_of(model).trainable = False


def job_order(manifest: dict, kinds: list[str]) -> list[tuple[str, int]]:
    seeds = {kind: [int(s) for s in manifest[kind]] for kind in kinds}
    jobs = []
    for i in range(max(len(s) for s in seeds.values())):
        jobs += [(kind, seeds[kind][i]) for kind in kinds if i < len(seeds[kind])]
    return jobs


def shrink(parts: dict, n: int) -> dict:
    """The first n photos of each part (all of them when n is 0)."""
    return {part: numbers[:n or None] for part, numbers in parts.items()}


def print_row(row: dict) -> None:
    s = row["scores"]
    main = (f"heldout {s['heldout']['all']:.2%} {s['heldout']['recall']}" if "heldout" in s
            else f"test {s['test']}")
    print(f"[{row['kind']} seed {row['seed']} blocks {row['blocks']}] val {s['val']} | {main} "
          f"({row['wall_s']:.0f} s)", flush=True)


def main() -> int:
    global PHOTOS, OFFLINE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".devdata")
    parser.add_argument("--out", required=True)
    parser.add_argument("--blocks", default="4,16")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    parser.add_argument("--learning-rate", type=float, default=CONFIG.fine_tune_learning_rate,
                        help="fine-tuning learning rate (default: the recipe's)")
    parser.add_argument("--kinds", default="in_domain,cross")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no job past this")
    parser.add_argument("--smoke", type=int, default=0, help="only this many photos a part (a quick check)")
    parser.add_argument("--seeds", default="", help="only these split seeds (comma-separated; default: all)")
    parser.add_argument("--jobs", type=int, default=0, help="at most this many jobs (0: all)")
    parser.add_argument("--jax-cache", default="/tmp/jax-cache", help="compiled steps kept for the next job and run")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    start = time.perf_counter()
    data = Path(args.data)
    if not (data / "manifest.json").exists():
        print(f"skipped: {data}/manifest.json is missing; run bench/deep_fine_tune/prepare.py first")
        return 2
    manifest = json.loads((data / "manifest.json").read_text())
    OFFLINE = OfflineAugment(**{k: tuple(v) if isinstance(v, list) else v for k, v in manifest["offline"].items()})
    PHOTOS = load_photos(data / "photos", len(manifest["photos"]))
    print(f"{len(PHOTOS)} photos loaded in {time.perf_counter() - start:.0f} s", flush=True)
    pool = get_context("fork").Pool(args.workers)  # before JAX starts its threads
    harness = Harness(manifest["photos"], manifest["classes"], 1 if args.smoke else args.epochs, args.learning_rate)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def emit(row: dict) -> None:
        print_row(row)
        with open(out / "rows.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    if harness.keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_compilation_cache_dir", args.jax_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        print(f"jax {jax.__version__} on {jax.devices()}", flush=True)
    jobs = [job for job in job_order(manifest, args.kinds.split(","))
            if not args.seeds or str(job[1]) in args.seeds.split(",")][:args.jobs or None]
    if not jobs:
        print(f"no job: {data}/manifest.json has no split seed {args.seeds} of {args.kinds}")
        return 2
    parts_of = {job: shrink(manifest[job[0]][str(job[1])], args.smoke) for job in jobs}
    pending = ask_views(pool, jobs[0][1], parts_of[jobs[0]]["train"])
    took: dict[str, float] = {}
    for i, job in enumerate(jobs):
        elapsed = time.perf_counter() - start
        if elapsed + took.get(job[0], 0.0) > args.budget_s:
            print(f"stopped before {job}: {elapsed:.0f} s used, a {job[0]} job takes ~{took[job[0]]:.0f} s", flush=True)
            break
        t0 = time.perf_counter()
        views = np.concatenate(pending.get())
        waited = time.perf_counter() - t0
        if i + 1 < len(jobs):
            pending = ask_views(pool, jobs[i + 1][1], parts_of[jobs[i + 1]]["train"])
        harness.run_job(job[0], job[1], parts_of[job], views, [int(b) for b in args.blocks.split(",")], emit)
        took[job[0]] = time.perf_counter() - t0
        print(f"== {job}: {took[job[0]]:.0f} s (waited {waited:.0f} s for its views)", flush=True)
    pool.terminate()
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
