"""How to combine the looks: trashnet4 -> all of mixed4, each pass of each fold model scored once, combined after.

    python bench/combine_looks.py [--seeds 42,0,1,2,3] [--json OUT] [--cache DIR]
    python bench/combine_looks.py --in-domain [--seeds 42,0,1,2] [--json OUT] [--cache DIR]

For each split seed it trains the default recipe's fold model as `bench/cross_source.py --holdout mixed4` does
(one look: the passes are taken apart here), then scores every held-out photo at 448x448 in: the whole photo,
the close-up half of it wide, and the same two on the mirror image. The ways of combining them (one look,
two, four, weighted, geometric, ...) are then a few lines of NumPy each, on the same passes. Fold models and
passes are cached in --cache, so a new way of combining costs nothing to score. Two families of passes the
shipped model does not take are scored too: the whole photo at a higher test resolution than training's 224
(256 and 288, resized from the 448x448 photo through a copy of the base that takes any size: FixRes, Touvron
et al. 2019) and tighter close-ups (0.35 and 0.25 of the photo wide, upsampled to 224). The adopted way (the model
looks twice at the photo and at its mirror image, trashure.glimpse) reproduces `cross_source.py` to the photo.

`--in-domain` asks what the looks do on the training sources' own photos: the shipped recipe's model of each split
seed (trashnet4 + mixed4 + cans-web, as `bench/in_domain.py` trains it), its passes on the validation part (which
chooses) and the test part (reported), per source.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cross_source import SHARED, held_out_photos, in_source  # noqa: E402

from trashure.config import CLASSES, TrainConfig  # noqa: E402

DATA = [SHARED / "trashnet4", SHARED / "mixed4"]
IN_DOMAIN_DATA = [*DATA, SHARED / "cans-web"]
PARTS = ("val", "test")
OTHER = CLASSES.index("other")


def fold_model(seed: int, cache: Path):
    import keras

    from trashure.training.prepared import prepare_data
    from trashure.training.run import fit

    path = cache / f"fold-seed{seed}.keras"
    if path.exists():
        return keras.saving.load_model(path)
    config = TrainConfig.from_dict({**TrainConfig(seed=seed).to_dict(), "glimpse_side": 0.0})
    data = prepare_data(DATA, config, keep=lambda r: not in_source(r, "mixed4"))
    model, _ = fit(data, config, echo=lambda line: print(f"[seed {seed}] {line}", flush=True))
    model.save(path)
    return model


def passes_model(model, side: float = 0.5):
    """The shipped two-look model (trashure.glimpse.with_glimpse) taken apart: the whole photo's probabilities,
    the close-up's (the two its `look_twice` layer averages) and the cells' (what chose the close-up)."""
    import keras

    from trashure.glimpse import GLIMPSE_LAYER, with_glimpse

    glimpse = with_glimpse(model, CLASSES, side)
    whole, close = glimpse.get_layer("look_twice").input
    return keras.Model(glimpse.input, [whole, close, glimpse.get_layer(GLIMPSE_LAYER).input[1]])


def score_passes(model, photos: np.ndarray) -> dict:
    """Every pass of the two-look model on photos (448x448) and on their mirror images."""
    looks = passes_model(model)
    out = looks.predict(photos, batch_size=32, verbose=0)
    mirrored = looks.predict(photos[:, :, ::-1], batch_size=32, verbose=0)
    return {"whole": out[0], "close": out[1], "cells": out[2], "whole_f": mirrored[0], "close_f": mirrored[1]}


def passes(seed: int, cache: Path, photos: np.ndarray) -> dict:
    path = cache / f"passes-seed{seed}.npz"
    if not path.exists():
        np.savez(path, **score_passes(fold_model(seed, cache), photos))
    return dict(np.load(path))


def in_domain_passes(seed: int, cache: Path) -> dict[str, dict]:
    """part -> the passes of the shipped recipe's model of this split seed on that part's photos, with their
    labels and sources (the model trained on all three folders, one look: the passes are taken apart here)."""
    from trashure.data import PhotoRows
    from trashure.training.prepared import prepare_data
    from trashure.training.run import fit

    path = cache / f"in-domain-passes-seed{seed}.npz"
    if not path.exists():
        config = TrainConfig.from_dict({**TrainConfig(seed=seed).to_dict(), "glimpse_side": 0.0})
        data = prepare_data(IN_DOMAIN_DATA, config)
        model, _ = fit(data, config, echo=lambda line: print(f"[seed {seed}] {line}", flush=True))
        scored = {}
        for part in PARTS:
            photos = PhotoRows(data.split.part(part), 448)[:]
            scored |= {f"{part}/{k}": v for k, v in score_passes(model, photos).items()}
            scored |= {f"{part}/labels": data.labels[part], f"{part}/sources": data.sources(part)}
        np.savez(path, **scored)
    flat = dict(np.load(path))
    return {part: {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith(part + "/")} for part in PARTS}


HIGHER_RESOLUTIONS = (256, 288)
TIGHTER_SIDES = (0.35, 0.25)


def any_size_model(model):
    """The one-look model's base, pooling and head on photos of any size (MobileNetV2 is fully convolutional;
    the saved model's base is built for 224x224)."""
    import keras

    from trashure.model import BASE_NAME

    base = keras.applications.MobileNetV2(input_shape=(None, None, 3), include_top=False, weights=None)
    base.set_weights(model.get_layer(BASE_NAME).get_weights())
    pool, hidden, probabilities = (model.get_layer(n) for n in ("pool", "dense_hidden", "probabilities"))
    image = keras.Input((None, None, 3))
    pixels = model.get_layer("preprocess")(image)
    return keras.Model(image, probabilities(hidden(pool(base(pixels, training=False)))))


def whole_at(model, photos: np.ndarray, size: int) -> np.ndarray:
    import tensorflow as tf

    out = []
    for start in range(0, len(photos), 64):
        batch = tf.image.resize(photos[start:start + 64], (size, size), method="area", antialias=True)
        out.append(model.predict(batch, verbose=0))
    return np.concatenate(out)


def extra_passes(seed: int, cache: Path, photos: np.ndarray) -> dict:
    """The whole photo at HIGHER_RESOLUTIONS (keys w256, w256_f, ...) and close-ups TIGHTER_SIDES wide (c0.35, ...)."""
    path = cache / f"extra-passes-seed{seed}.npz"
    if not path.exists():
        model, out = fold_model(seed, cache), {}
        any_size = any_size_model(model)
        for size in HIGHER_RESOLUTIONS:
            out[f"w{size}"] = whole_at(any_size, photos, size)
            out[f"w{size}_f"] = whole_at(any_size, photos[:, :, ::-1], size)
        for side in TIGHTER_SIDES:
            tight = passes_model(model, side)
            out[f"c{side}"] = tight.predict(photos, batch_size=32, verbose=0)[1]
            out[f"c{side}_f"] = tight.predict(photos[:, :, ::-1], batch_size=32, verbose=0)[1]
        np.savez(path, **out)
    return dict(np.load(path))


def log(p):
    return np.log(p + 1e-7)


def cell_vote(cells):
    weight = 1 - cells[..., OTHER:OTHER + 1]
    return (cells * weight).sum((1, 2)) / weight.sum((1, 2))


COMBINATIONS = {
    "one look": lambda d: d["whole"],
    "one look and its mirror image": lambda d: d["whole"] + d["whole_f"],
    "the close-up alone": lambda d: d["close"],
    "looking twice": lambda d: d["whole"] + d["close"],
    "looking twice, and at the mirror image (adopted)": lambda d: d["whole"] + d["close"] + d["whole_f"] + d["close_f"],
    "looking twice, weights 0.6 / 0.4": lambda d: 0.6 * d["whole"] + 0.4 * d["close"],
    "looking twice, weights 0.4 / 0.6": lambda d: 0.4 * d["whole"] + 0.6 * d["close"],
    "looking twice, the more confident": lambda d: np.where(
        (d["whole"].max(1) > d["close"].max(1))[:, None], d["whole"], d["close"]),
    "looking twice, plus the cells weighted by 1 - p(other)": lambda d: d["whole"] + d["close"] + cell_vote(d["cells"]),
    "looking twice, geometric mean": lambda d: log(d["whole"]) + log(d["close"]),
    "four looks, geometric mean": lambda d: log(d["whole"]) + log(d["close"]) + log(d["whole_f"]) + log(d["close_f"]),
    **{f"one look at {n}x{n} (and its mirror image)": (lambda d, n=n: d[f"w{n}"] + d[f"w{n}_f"])
       for n in HIGHER_RESOLUTIONS},
    **{f"four looks, the whole photo at {n}x{n}": (lambda d, n=n: d["close"] + d["close_f"] + d[f"w{n}"] + d[f"w{n}_f"])
       for n in HIGHER_RESOLUTIONS},
    **{f"four looks, the close-up {side} wide": (lambda d, k=f"c{side}": d["whole"] + d["whole_f"] + d[k] + d[f"{k}_f"])
       for side in TIGHTER_SIDES},
    **{f"four looks and a close-up {side} wide (six)": (
        lambda d, k=f"c{side}": d["whole"] + d["close"] + d["whole_f"] + d["close_f"] + d[k] + d[f"{k}_f"])
       for side in TIGHTER_SIDES},
}


# The ways of combining that need no pass beyond the shipped model's four.
IN_DOMAIN_COMBINATIONS = ("one look", "one look and its mirror image", "the close-up alone", "looking twice",
                          "looking twice, and at the mirror image (adopted)", "four looks, geometric mean")


def in_domain(seeds: list[int], cache: Path) -> dict:
    """combination -> part -> source -> accuracy (%) per seed, printed as a table of the means."""
    scored = {seed: in_domain_passes(seed, cache) for seed in seeds}
    sources = sorted(set(scored[seeds[0]]["val"]["sources"]))
    table = {}
    for name in IN_DOMAIN_COMBINATIONS:
        table[name] = {part: {} for part in PARTS}
        for part in PARTS:
            right = {seed: COMBINATIONS[name](scored[seed][part]).argmax(1) == scored[seed][part]["labels"]
                     for seed in seeds}
            for source in ("all", *sources):
                table[name][part][source] = [
                    round(100 * float(np.mean(right[s] if source == "all" else
                                              right[s][scored[s][part]["sources"] == source])), 2) for s in seeds]
    print(f"\nIn-domain, trashnet4 + mixed4 + cans-web, split seeds {', '.join(map(str, seeds))} (mean; "
          "validation chooses, test is reported)\n")
    columns = [(part, source) for part in PARTS for source in ("all", *sources)]
    print("| how the passes are combined | " + " | ".join(f"{p} {s}" for p, s in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, parts in table.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(parts[p][s]):.2f}%" for p, s in columns) + " |")
    print("\nvalidation, trashnet4, per seed: " + "; ".join(
        f"{name}: {' / '.join(f'{x:.2f}' for x in parts['val']['trashnet4'])}" for name, parts in table.items()))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", help="split seeds (default 42,0,1,2,3; with --in-domain 42,0,1,2)")
    parser.add_argument("--in-domain", action="store_true", help="the training sources' own validation and "
                        "test parts, with the shipped recipe's model of each seed")
    parser.add_argument("--json", help="also write the table to this file")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "trashure-combine-looks")
    args = parser.parse_args()
    seeds = [int(s) for s in (args.seeds or ("42,0,1,2" if args.in_domain else "42,0,1,2,3")).split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.in_domain:
        if not all(d.is_dir() for d in IN_DOMAIN_DATA):
            print("no ../shared/data/trashnet4, mixed4 and cans-web beside the repo", file=sys.stderr)
            return 2
        table = in_domain(seeds, args.cache)
        if args.json:
            Path(args.json).write_text(json.dumps({"seeds": seeds, "accuracy_percent": table}, indent=1))
        return 0
    if not all(d.is_dir() for d in DATA):
        print("no ../shared/data/trashnet4 and mixed4 beside the repo", file=sys.stderr)
        return 2
    _, photos, labels = held_out_photos(DATA, "mixed4", list(CLASSES), 448)
    scored = {seed: {**passes(seed, args.cache, photos), **extra_passes(seed, args.cache, photos)} for seed in seeds}
    table = {name: [round(100 * float(np.mean(combine(scored[s]).argmax(1) == labels)), 2) for s in seeds]
             for name, combine in COMBINATIONS.items()}
    print(f"\ntrashnet4 -> all {len(labels)} photos of mixed4, split seeds {', '.join(map(str, seeds))}\n")
    print("| how the passes are combined | per seed | mean |\n|---|---|---:|")
    for name, row in table.items():
        print(f"| {name} | {' / '.join(f'{x:.2f}' for x in row)} | {np.mean(row):.2f}% |")
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds": seeds, "accuracy_percent": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
