"""In-domain accuracy per source: train on every data folder, score each source's own validation and test
parts, over several split seeds.

    python bench/in_domain.py [--data DIR ...] [--set key=value ...] [--seeds 42,0,1,2] [--json OUT]

The companion of bench/cross_source.py. A setting is chosen by the cross-source table and by the
validation columns here (the mean over the seeds); the test columns are what the README reports, printed
beside them and never used to choose. Defaults: the shipped model's folders (trashnet4, mixed4, cans-web).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cross_source import SHARED, fine_tune_facts, recipe_bench, report, save_rows  # noqa: E402

from trashure.config import TrainConfig  # noqa: E402

DEFAULT_DATA = [SHARED / "trashnet4", SHARED / "mixed4", SHARED / "cans-web"]


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
            **fine_tune_facts(facts), "wall_s": time.perf_counter() - t0}


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
    bench = recipe_bench("data folders (default: trashnet4, mixed4, cans-web)", "42,0,1,2", DEFAULT_DATA)
    if bench is None:
        return 2
    args, data_dirs, overrides, configs = bench
    rows = []
    for config in configs:
        rows.append(run_seed(data_dirs, config))
        save_rows(args, overrides, rows)
        r = rows[-1]
        print(f"== seed {config.seed}: val {r['val']['all']:.2%}, test {r['test']['all']:.2%} ({r['wall_s']:.0f} s)",
              flush=True)
    report(args, overrides, data_dirs, rows, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
