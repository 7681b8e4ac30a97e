"""In-domain accuracy per source: train on every data folder, score each source's own validation and test
parts, over several split seeds.

    python bench/in_domain.py [--data DIR ...] [--set key=value ...] [--seeds 42,0,1,2] [--json OUT]

The companion of bench/cross_source.py. A setting is chosen by the cross-source table and by the
validation columns here (the mean over the seeds); the test columns are what the README reports, printed
beside them and never used to choose. Defaults: the shipped model's folders (trashnet4, mixed4, cans-web).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import REPO_ROOT, TrainConfig  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_DATA = [SHARED / "trashnet4", SHARED / "mixed4", SHARED / "cans-web"]


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def part_accuracy(model, data, part: str) -> dict[str, float]:
    """Accuracy of a part overall and per source, with the two-look model fit() returns."""
    from trashure.evaluation import metrics_per_source, predict_arrays
    from trashure.data import PhotoRows

    rows = PhotoRows(data.split.part(part), int(model.input_shape[1]))  # 448 for a model that looks twice
    probabilities = predict_arrays(model, rows)
    labels = data.labels[part]
    out = {"all": float((probabilities.argmax(1) == labels).mean())}
    for source, m in metrics_per_source(probabilities, labels, data.sources(part), data.dataset.classes).items():
        out[source] = m["accuracy"]
    return out


def run_seed(data_dirs: list[Path], config: TrainConfig) -> dict:
    from trashure.training.prepared import prepare_data
    from trashure.training.run import fit

    t0 = time.perf_counter()
    data = prepare_data(data_dirs, config)
    model, facts = fit(data, config, echo=lambda line: print(f"[seed {config.seed}] {line}", flush=True))
    return {"seed": config.seed, "val": part_accuracy(model, data, "val"), "test": part_accuracy(model, data, "test"),
            "fine_tune_kept": facts.get("fine_tune_kept"), "wall_s": time.perf_counter() - t0}


def print_table(rows: list[dict]) -> None:
    sources = list(rows[0]["val"])
    print("| seed | " + " | ".join(f"val {s}" for s in sources) + " | " + " | ".join(f"test {s}" for s in sources)
          + " | wall (s) |")
    print("|---:|" + "---:|" * (2 * len(sources) + 1))
    for r in rows:
        print(f"| {r['seed']} | " + " | ".join(f"{r['val'][s]:.2%}" for s in sources) + " | "
              + " | ".join(f"{r['test'][s]:.2%}" for s in sources) + f" | {r['wall_s']:.0f} |")
    mean = {part: {s: statistics.mean(r[part][s] for r in rows) for s in sources} for part in ("val", "test")}
    print(f"| mean of {len(rows)} | " + " | ".join(f"**{mean['val'][s]:.2%}**" for s in sources) + " | "
          + " | ".join(f"{mean['test'][s]:.2%}" for s in sources) + " | |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", help="data folders (default: trashnet4, mixed4, cans-web)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default="42,0,1,2", help="comma-separated split seeds")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    data_dirs = [Path(d) for d in (args.data or DEFAULT_DATA)]
    missing = [d for d in data_dirs if not d.is_dir()]
    if missing:
        print(f"no data folder {', '.join(map(str, missing))}: put ../shared/data beside the repo", file=sys.stderr)
        return 2
    overrides = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    rows = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        config = TrainConfig.from_dict({**TrainConfig(seed=seed).to_dict(), **overrides})
        rows.append(run_seed(data_dirs, config))
        r = rows[-1]
        print(f"== seed {seed}: val {r['val']['all']:.2%}, test {r['test']['all']:.2%} ({r['wall_s']:.0f} s)",
              flush=True)
    print(f"\nrecipe: {json.dumps(overrides) if overrides else 'default'}; folders: "
          + ", ".join(d.name for d in data_dirs))
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"recipe": overrides, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
