"""The fine-tuned model moved along the line from the frozen stage's weights, measured across sources.

    python bench/weight_interpolation.py [--holdout mixed4] [--alphas 0.5,1,1.25,1.5] [--seeds 42,0,1,2,3]
                                         [--set key=value ...] [--data DIR ...] [--json OUT]

Each fold trains once (the recipe, `--set` overrides as in bench/cross_source.py) and keeps the weights the
frozen stage ended with (w0) and those the fine-tuning stage ended with (w1). The model is then evaluated, on
all of the held-out source and on the training sources' validation photos, at w0 + alpha * (w1 - w0) for each
alpha: below 1, towards the frozen stage (WiSE-FT, Wortsman et al., "Robust fine-tuning of zero-shot models",
CVPR 2022, where it helps out of distribution); above 1, past the fine-tuned weights, further along the
direction fine-tuning took. alpha 1 is the recipe as it trains, so its column reproduces bench/cross_source.py's
row of the same seed. The last table gives each alpha's mean and its paired change against alpha 1.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cross_source import DEFAULT_DATA, held_out_photos, in_source, recipe_bench, report, save_rows  # noqa: E402
from trashure.config import TrainConfig  # noqa: E402
from trashure.data import decode_records  # noqa: E402


def interpolated(w0: list[np.ndarray], w1: list[np.ndarray], alpha: float) -> list[np.ndarray]:
    return [(x0 + alpha * (x1 - x0)).astype(x1.dtype) for x0, x1 in zip(w0, w1)]


def run_fold(data_dirs: list[Path], holdout: str, config: TrainConfig, alphas: list[float]) -> dict:
    import trashure.training.fast as fast
    from trashure.evaluation import metrics_from_probabilities, predict_arrays
    from trashure.training.prepared import prepare_data
    from trashure.training.run import fit

    t0 = time.perf_counter()
    start: dict = {}
    second_stage = fast.run_second_stage

    def keeping_the_start(model, *args, **kwargs):
        start["model"], start["weights"] = model, model.get_weights()
        return second_stage(model, *args, **kwargs)

    with mock.patch.object(fast, "run_second_stage", keeping_the_start):
        data = prepare_data(data_dirs, config, keep=lambda r: not in_source(r, holdout))
        model, facts = fit(data, config, echo=lambda line: print(f"[{holdout} {config.seed}] {line}", flush=True))
    if "model" not in start:
        raise SystemExit("this recipe has no fast-mode fine-tuning stage to move along (fine_tune_blocks=0?)")
    classes, size = data.dataset.classes, int(model.input_shape[1])  # 448 for a model that looks twice
    _, images, labels = held_out_photos(data_dirs, holdout, classes, size)
    val_images, val_labels = decode_records(data.split.val, size), data.labels["val"]
    w0, w1 = start["weights"], start["model"].get_weights()
    by_alpha = {}
    for alpha in alphas:
        start["model"].set_weights(interpolated(w0, w1, alpha))
        m = metrics_from_probabilities(predict_arrays(model, images), labels, classes)
        val_accuracy = float(np.mean(predict_arrays(model, val_images).argmax(1) == val_labels))
        by_alpha[str(alpha)] = {"accuracy": m["accuracy"], "val_accuracy": val_accuracy,
                                "recall": {c: v["recall"] for c, v in m["per_class"].items() if v["support"]}}
        print(f"== held out {holdout}, seed {config.seed}, alpha {alpha:g}: {m['accuracy']:.2%} "
              f"(val {val_accuracy:.2%})", flush=True)
    return {"holdout": holdout, "seed": config.seed, "n_heldout": len(labels), "fine_tune_kept": facts.get("fine_tune_kept"),
            "alphas": by_alpha, "wall_s": time.perf_counter() - t0}


def print_alphas(rows: list[dict]) -> None:
    alphas = sorted({a for r in rows for a in r["alphas"]}, key=float)
    print("| alpha | " + " | ".join(f"seed {r['seed']}" for r in rows) + " | mean | change against 1 | validation |")
    print("|---:|" + "---:|" * len(rows) + "---:|---|---:|")
    for a in alphas:
        accs = [100 * r["alphas"][a]["accuracy"] for r in rows if a in r["alphas"]]
        vals = [100 * r["alphas"][a]["val_accuracy"] for r in rows if a in r["alphas"]]
        changes = [100 * (r["alphas"][a]["accuracy"] - r["alphas"]["1.0"]["accuracy"])
                   for r in rows if a in r["alphas"] and "1.0" in r["alphas"]]
        better = sum(c > 0 for c in changes)
        paired = (f"{statistics.mean(changes):+.2f} ({better} of {len(changes)} better)" if changes else "—")
        print(f"| {float(a):g} | " + " | ".join(f"{100 * r['alphas'][a]['accuracy']:.2f}%" if a in r["alphas"] else "—"
                                             for r in rows)
              + f" | {statistics.mean(accs):.2f}% | {paired} | {statistics.mean(vals):.2f}% |")


def main() -> int:
    def options(parser) -> None:
        parser.add_argument("--holdout", default="mixed4")
        parser.add_argument("--alphas", default="0.5,1,1.25,1.5", help="comma-separated; 1: the recipe as it trains")

    bench = recipe_bench("data folders (default: trashnet4 and mixed4)", "42,0,1,2,3", DEFAULT_DATA, options)
    if bench is None:
        return 2
    args, data_dirs, overrides, configs = bench
    alphas = sorted({float(a) for a in args.alphas.split(",")} | {1.0})
    rows = []
    for config in configs:
        rows.append(run_fold(data_dirs, args.holdout, config, alphas))
        save_rows(args, overrides, rows)
    report(args, overrides, data_dirs, rows, print_alphas)
    return 0


if __name__ == "__main__":
    sys.exit(main())
