"""The training modes side by side in one run, on the same seeded splits.

    python bench/train_speed.py [--data DIR ...] [--seeds 42] [--modes exact,fast,fast+ft,exact+ft]
                                [--epoch-probe]

- exact: the reference recipe (the notebook verbatim): every epoch through the whole model.
- fast: Trashure's recipe, frozen stage only, on cached views.
- fast+ft: Trashure's recipe with its fine-tuning stage on cached activations at the cut (the default).
- exact+ft: the same recipe as fast+ft, trained the exact way: fresh augmentation every epoch through the
  whole model, then the fine-tuning stage end to end.
- fast-cold: fast+ft after emptying the cache (it converts the frozen part to TFLite first).
- fast-warm / fast+ft-warm: a second fast / fast+ft run with another learning rate, right after the one
  before it: the views it needs are in the persistent view cache (give --modes fast,fast-warm).

Prints wall times, their ratios and test accuracies (overall and per source) on the same splits; with
several seeds, the mean comparison. One split's test part moves a point with a few photos, so compare
means. --epoch-probe measures one epoch of each exact stage instead of whole exact+ft runs (a whole run
takes 8-10 minutes on trashnet4 alone and about 17 on trashnet4 + mixed4, on 2 cores).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import TrainConfig, default_cache_dir, default_data_dirs  # noqa: E402
from trashure.training import train  # noqa: E402

MODES = {
    "exact": lambda seed: TrainConfig.for_mode("exact", seed=seed),
    "fast": lambda seed: TrainConfig(seed=seed, fine_tune_blocks=0),
    "fast+ft": lambda seed: TrainConfig(seed=seed),
    "fast-cold": lambda seed: TrainConfig(seed=seed),
    "exact+ft": lambda seed: TrainConfig(mode="exact", seed=seed),
    # A second run with other head settings (learning rate) on views cached by the run before it.
    "fast-warm": lambda seed: TrainConfig(seed=seed, fine_tune_blocks=0, learning_rate=3e-4),
    "fast+ft-warm": lambda seed: TrainConfig(seed=seed, learning_rate=3e-4),
}


def run_mode(data: list[Path], mode: str, seed: int, runs_dir: str, **overrides) -> dict:
    if mode == "fast-cold":
        shutil.rmtree(default_cache_dir(), ignore_errors=True)
    elif not mode.endswith("-warm"):  # every other row computes its own views
        shutil.rmtree(default_cache_dir() / "views", ignore_errors=True)
    config = TrainConfig.from_dict({**MODES[mode](seed).to_dict(), **overrides})
    t0 = time.perf_counter()
    run = train(data, config, runs_dir=runs_dir, echo=lambda line: print(f"[{mode} seed {seed}] {line}", flush=True))
    wall = time.perf_counter() - t0
    m = run.metrics()
    return {"mode": mode, "seed": seed, "wall_s": wall, "accuracy": m["accuracy"], "loss": m["loss"],
            "epochs": m["epochs_run"], "per_source": {k: v["accuracy"] for k, v in m["per_source"].items()},
            "history": run.history(), **m["timings"]}


def print_table(results: list[dict]) -> None:
    sources = sorted({s for r in results for s in r["per_source"]})
    print("| seed | mode | wall time (s) | check | features | train | epochs | test accuracy | "
          + " | ".join(sources) + " | test loss |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(sources) + "---:|")
    for r in results:
        print(f"| {r['seed']} | {r['mode']} | {r['wall_s']:.1f} | {r['data_s']:.1f} | {r['features_s']:.1f} | "
              f"{r['train_s']:.1f} | {r['epochs']} | {r['accuracy']:.2%} | "
              + " | ".join(f"{r['per_source'].get(s, float('nan')):.2%}" for s in sources) + f" | {r['loss']:.4f} |")


def print_summary(results: list[dict], seeds: list[int]) -> None:
    by = {(r["mode"], r["seed"]): r for r in results}
    mean = lambda rows: 100 * statistics.mean(r["accuracy"] for r in rows)  # noqa: E731
    for fast, slow in (("fast", "exact"), ("fast+ft", "exact"), ("fast+ft", "exact+ft"), ("fast-warm", "exact"),
                       ("fast-warm", "fast"), ("fast+ft-warm", "exact+ft")):
        paired = [(by[(fast, s)], by[(slow, s)]) for s in seeds if (fast, s) in by and (slow, s) in by]
        if not paired:
            continue
        speedups = [e["wall_s"] / f["wall_s"] for f, e in paired]
        diffs = [100 * (f["accuracy"] - e["accuracy"]) for f, e in paired]
        print(f"{fast} vs {slow} over {len(paired)} split(s): {statistics.mean(speedups):.1f}x faster; mean test "
              f"accuracy {mean([f for f, _ in paired]):.2f}% vs {mean([e for _, e in paired]):.2f}% "
              f"({statistics.mean(diffs):+.2f} points, per split {min(diffs):+.2f} to {max(diffs):+.2f})")
    for mode in MODES:
        rows = [by[(mode, s)] for s in seeds if (mode, s) in by]
        if len(rows) > 1:
            print(f"{mode}: mean test accuracy {mean(rows):.2f}% over seeds {', '.join(str(r['seed']) for r in rows)}")


def epoch_probe(data: list[Path], seed: int, runs_dir: str) -> None:
    """One epoch of each stage of exact+ft, to price a whole run without running it."""
    r = run_mode(data, "exact+ft", seed, runs_dir, epochs=1, fine_tune_epochs=1, patience=0, fine_tune_patience=0)
    for h in r["history"]:
        print(f"exact+ft, one {h['stage']} epoch: {h['seconds']:.1f} s")
    frozen, tuned = (next(h["seconds"] for h in r["history"] if h["stage"] == s) for s in ("frozen", "fine-tune"))
    print(f"a whole exact+ft run (20 + 10 epochs at most) would take up to {(20 * frozen + 10 * tuned) / 60:.0f} min")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", help="data folders (default: the shared trashnet4 and mixed4)")
    parser.add_argument("--seeds", default="42", help="comma-separated split seeds")
    parser.add_argument("--modes", default="exact,fast,fast+ft", help=", ".join(MODES))
    parser.add_argument("--epoch-probe", action="store_true", help="also time one epoch of each exact+ft stage")
    args = parser.parse_args()
    data = [Path(d) for d in (args.data or default_data_dirs())]
    if not data or not all(d.is_dir() for d in data):
        print("no data folder: give --data or put ../shared/data beside the repo", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in seeds:
            for mode in args.modes.split(","):
                results.append(run_mode(data, mode, seed, runs_dir))
        if args.epoch_probe:
            epoch_probe(data, seeds[0], runs_dir)
    print()
    print_table(results)
    print_summary(results, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
