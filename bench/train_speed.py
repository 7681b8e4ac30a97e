"""Fast vs exact training on the real photos, side by side in one run.

    python bench/train_speed.py [--data ../shared/data/trashnet4] [--seeds 42] [--modes exact,fast-cold,fast]

Prints both wall times, their ratio and both test accuracies on the same seeded 80/10/10 split. With
several seeds (e.g. --seeds 42,0,1,2 --modes exact,fast) every mode runs on every split and the summary
compares the mean accuracies: one split's 187 test photos move by a point with two photos, so a
difference of a point between two single runs is within the noise.
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

from trashure.config import TrainConfig, default_cache_dir, default_data_dir  # noqa: E402
from trashure.training import train  # noqa: E402


def run_mode(data: Path, mode: str, seed: int, runs_dir: str) -> dict:
    if mode == "fast-cold":
        shutil.rmtree(default_cache_dir(), ignore_errors=True)
    t0 = time.perf_counter()
    run = train(data, TrainConfig(mode=mode.split("-")[0], seed=seed), runs_dir=runs_dir,
                echo=lambda line: print(f"[{mode} seed {seed}] {line}", flush=True))
    wall = time.perf_counter() - t0
    m = run.metrics()
    return {"mode": mode, "seed": seed, "wall_s": wall, "accuracy": m["accuracy"], "loss": m["loss"],
            "epochs": m["epochs_run"], **m["timings"]}


def print_table(results: list[dict]) -> None:
    print("| seed | mode | wall time (s) | decode | features | train | evaluate | epochs | test accuracy | test loss |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['seed']} | {r['mode']} | {r['wall_s']:.1f} | {r['decode_s']:.1f} | {r['features_s']:.1f} | "
              f"{r['train_s']:.1f} | {r['eval_s']:.1f} | {r['epochs']} | {r['accuracy']:.2%} | {r['loss']:.4f} |")


def print_summary(results: list[dict], seeds: list[int]) -> None:
    by = {(r["mode"], r["seed"]): r for r in results}
    for mode in ("fast-cold", "fast"):
        paired = [(by[(mode, s)], by[("exact", s)]) for s in seeds if (mode, s) in by and ("exact", s) in by]
        if not paired:
            continue
        speedups = [e["wall_s"] / f["wall_s"] for f, e in paired]
        diffs = [100 * (f["accuracy"] - e["accuracy"]) for f, e in paired]
        for (f, e), speedup, diff in zip(paired, speedups, diffs):
            print(f"seed {f['seed']}: {mode} is {speedup:.1f}x faster than exact; test accuracy {diff:+.2f} points")
        if len(paired) > 1:
            mean = lambda rows: 100 * statistics.mean(r["accuracy"] for r in rows)  # noqa: E731
            print(f"{mode} over {len(paired)} splits: {statistics.mean(speedups):.1f}x faster; mean test accuracy "
                  f"{mean([f for f, _ in paired]):.2f}% vs exact {mean([e for _, e in paired]):.2f}% "
                  f"({statistics.mean(diffs):+.2f} points, per split {min(diffs):+.2f} to {max(diffs):+.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=default_data_dir())
    parser.add_argument("--seeds", default="42", help="comma-separated split seeds")
    parser.add_argument("--modes", default="exact,fast-cold,fast",
                        help="exact, fast-cold (first run: converts the frozen base to TFLite), fast (cached base)")
    args = parser.parse_args()
    if not args.data or not Path(args.data).is_dir():
        print("no data folder: give --data or put ../shared/data/trashnet4 beside the repo", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in seeds:
            for mode in args.modes.split(","):
                results.append(run_mode(Path(args.data), mode, seed, runs_dir))
    print()
    print_table(results)
    print_summary(results, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
