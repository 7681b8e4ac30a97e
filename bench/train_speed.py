"""Fast vs exact training on the real photos, side by side in one run.

    python bench/train_speed.py [--data ../shared/data/trashnet4] [--seed 42]

Prints both wall times, their ratio and both test accuracies (same seeded 80/10/10 split).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import TrainConfig, default_cache_dir, default_data_dir  # noqa: E402
from trashure.training import train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=default_data_dir())
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--modes", default="exact,fast-cold,fast",
                        help="exact, fast-cold (first run: converts the frozen base to TFLite), fast (cached base)")
    args = parser.parse_args()
    if not args.data or not Path(args.data).is_dir():
        print("no data folder: give --data or put ../shared/data/trashnet4 beside the repo", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory() as runs_dir:
        for mode in args.modes.split(","):
            if mode == "fast-cold":
                shutil.rmtree(default_cache_dir(), ignore_errors=True)
            t0 = time.perf_counter()
            run = train(args.data, TrainConfig(mode=mode.split("-")[0], seed=args.seed), runs_dir=runs_dir,
                        echo=lambda line, m=mode: print(f"[{m}] {line}", flush=True))
            wall = time.perf_counter() - t0
            m = run.metrics()
            results[mode] = {"wall_s": wall, "accuracy": m["accuracy"], "loss": m["loss"],
                             "epochs": m["epochs_run"], **m["timings"]}
    print()
    print("| mode | wall time (s) | decode | features | train | evaluate | epochs | test accuracy | test loss |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['wall_s']:.1f} | {r['decode_s']:.1f} | {r['features_s']:.1f} | {r['train_s']:.1f} | "
              f"{r['eval_s']:.1f} | {r['epochs']} | {r['accuracy']:.2%} | {r['loss']:.4f} |")
    for mode in ("fast-cold", "fast"):
        if {mode, "exact"} <= set(results):
            f, e = results[mode], results["exact"]
            print(f"{mode} is {e['wall_s'] / f['wall_s']:.1f}x faster than exact; test accuracy "
                  f"{100 * (f['accuracy'] - e['accuracy']):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
