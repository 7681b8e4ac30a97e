"""Leave one source out: train on every source but one, test on all of the held-out one.

    python bench/cross_source.py [--data DIR ...] [--holdout trashnet4,mixed4,mixed4:pdoo,mixed4:duen]
                                 [--set key=value ...] [--seeds 42,0,1] [--json OUT] [--against BASE.json]
    python bench/cross_source.py --rows RUN.json --against BASE.json   (compare two saved runs, no training)

A source is a data folder (`trashnet4`) or, inside one, the photos whose file name starts with a tag
(`mixed4:pdoo` is mixed4's photos named pdoo_*). The held-out photos lend nothing to their own
measurement: not their photos (left out before the split), not their backgrounds (cut-and-paste uses
generated ones, or photographed surfaces that belong to no data source). Validation, for early stopping, is the training sources' own 10%. `--set` changes the
recipe (e.g. `--set fine_tune_blocks=0 --set paste_probability=0`) so settings are chosen by this table.

One fold moves by several points with the split seed and the augmentation draws (trashnet4 -> mixed4 by the
default recipe: 53.0%, 55.8% and 61.1% on seeds 1, 42 and 0), most of it in one class (mixed4's cans), so
compare settings by the mean over several seeds (`--seeds`), which the last table prints. `--against` a
saved run (`--json`; the shipped recipe's seeds are in bench/results/cross_source_shipped_seeds.json)
adds the paired comparison, fold by fold: the mean change, its standard error and how many folds are better.
Each row also keeps its confusion matrix and the recall within each file-name tag and class, and the last table
sums those over the seeds (beside the baseline's, on the folds both recorded): which source's photos a setting
gains or loses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import REPO_ROOT, TrainConfig  # noqa: E402
from trashure.data import ImageRecord, decode_dataset, scan_sources  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_DATA = [SHARED / "trashnet4", SHARED / "mixed4"]
DEFAULT_HOLDOUTS = "trashnet4,mixed4,mixed4:pdoo,mixed4:duen"


def source_tag(record: ImageRecord) -> str:
    """The tag a photo's file name starts with (mixed4's `pdoo_12.jpg` -> pdoo)."""
    return Path(record.relpath).name.split("_", 1)[0]


def in_source(record: ImageRecord, holdout: str) -> bool:
    folder, _, tag = holdout.partition(":")
    if record.source != folder:
        return False
    return not tag or source_tag(record) == tag


def recall_by_tag(records: list[ImageRecord], probabilities: np.ndarray, classes: list[str]) -> dict[str, list[int]]:
    """[right, photos] for each class within each file-name tag ("ktep/other"), so a row tells which source's
    photos a setting gains or loses. A folder whose names carry no tag counts as one tag."""
    from trashure.evaluation import metrics_per_source

    tags = [source_tag(r) if "_" in Path(r.relpath).name else r.source for r in records]
    labels = np.array([r.label for r in records])
    per_tag = metrics_per_source(probabilities, labels, tags, classes)
    return {f"{tag}/{name}": [m["confusion_matrix"][i][i], m["per_class"][name]["support"]]
            for tag, m in sorted(per_tag.items()) for i, name in enumerate(classes) if m["per_class"][name]["support"]}


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def recipe_bench(data_help: str, seeds: str, default_data: list[Path], more=None, trains=lambda args: True):
    """The command line every recipe bench shares (data folders, --set overrides, split seeds, a JSON copy;
    `more` adds a bench's own options): (args, data folders, overrides, one config per seed), or None after
    saying which data folder is missing. A bench whose `trains(args)` is False (a report of saved rows) needs
    no data."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", help=data_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default=seeds, help="comma-separated split seeds")
    parser.add_argument("--json", help="also write the rows to this file")
    if more:
        more(parser)
    args = parser.parse_args()
    data_dirs = [Path(d) for d in (args.data or default_data)]
    missing = [d for d in data_dirs if not d.is_dir()]
    if missing and trains(args):
        print(f"no data folder {', '.join(map(str, missing))}: put ../shared/data beside the repo", file=sys.stderr)
        return None
    overrides = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    configs = [TrainConfig.from_dict({**TrainConfig(seed=int(seed)).to_dict(), **overrides})
               for seed in args.seeds.split(",")]
    return args, data_dirs, overrides, configs


def save_rows(args: argparse.Namespace, overrides: dict, rows: list[dict]) -> None:
    """The rows so far in --json, written whole (a run of many folds that is stopped keeps the ones done)."""
    if args.json:
        from trashure.files import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps({"recipe": overrides, "rows": rows}, indent=2))


def report(args: argparse.Namespace, overrides: dict, data_dirs: list[Path], rows: list[dict], *tables) -> None:
    """The recipe, the tables printed from the rows, and the rows in --json."""
    print(f"\nrecipe: {json.dumps(overrides) if overrides else 'default'}; training folders: "
          + ", ".join(d.name for d in data_dirs))
    for table in tables:
        table(rows)
    save_rows(args, overrides, rows)


def held_out_photos(data_dirs: list[Path], holdout: str, classes, size: int) -> tuple[list[ImageRecord], np.ndarray,
                                                                                      np.ndarray]:
    """All of the held-out source's photos that decode, at size x size: (records, pixels, labels)."""
    held = scan_sources(data_dirs, classes)
    held.records = [r for r in held.records if in_source(r, holdout)]
    images = decode_dataset(held, size)
    return held.records, images, np.array([r.label for r in held.records])


def run_fold(data_dirs: list[Path], holdout: str, config: TrainConfig) -> dict:
    from trashure.evaluation import metrics_from_probabilities, predict_arrays
    from trashure.training.prepared import prepare_data
    from trashure.training.run import fit, kept_val_accuracy

    t0 = time.perf_counter()
    data = prepare_data(data_dirs, config, keep=lambda r: not in_source(r, holdout))
    model, facts = fit(data, config, echo=lambda line: print(f"[{holdout}] {line}", flush=True))
    # 448 for a model that looks twice
    records, images, labels = held_out_photos(data_dirs, holdout, data.dataset.classes, int(model.input_shape[1]))
    probabilities = predict_arrays(model, images)
    m = metrics_from_probabilities(probabilities, labels, data.dataset.classes)
    val = kept_val_accuracy(facts["history"], facts)
    return {"holdout": holdout, "n_train": len(data.split.train), "n_heldout": len(labels),
            "accuracy": m["accuracy"], "ci95": m["accuracy_ci95"], "loss": m["loss"],
            "recall": {c: v["recall"] for c, v in m["per_class"].items() if v["support"]},
            "confusion": m["confusion_matrix"],
            "recall_by_tag": recall_by_tag(records, probabilities, data.dataset.classes),
            "val_accuracy": val, **fine_tune_facts(facts), "wall_s": time.perf_counter() - t0}


def fine_tune_facts(facts: dict) -> dict:
    """What the fine-tuning stage's keep rule saw, so a row tells why a run kept or dropped the stage."""
    keys = ("fine_tune_kept", "frozen_val_loss", "fine_tune_val_loss", "fine_tune_worse_p")
    return {k: facts.get(k) for k in keys}


def print_rows(rows: list[dict]) -> None:
    print("| held out | seed | trained on | held-out photos | accuracy (95% CI) | loss | recall per class | val acc "
          "| wall (s) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        if "recall" not in r:  # a saved baseline row may hold the accuracy alone
            print(f"| {r['holdout']} | {r['seed']} | | | {r['accuracy']:.2%} | | | | |")
            continue
        recall = ", ".join(f"{c} {v:.0%}" for c, v in r["recall"].items())
        print(f"| {r['holdout']} | {r['seed']} | {r['n_train']} | {r['n_heldout']} | {r['accuracy']:.2%} "
              f"({r['ci95'][0]:.1%}-{r['ci95'][1]:.1%}) | {r['loss']:.3f} | {recall} | {r['val_accuracy']:.2%} | "
              f"{r['wall_s']:.0f} |")


def print_means(rows: list[dict]) -> None:
    """Per held-out source, the mean (and spread) over the seeds: what settings are compared by."""
    holdouts = list(dict.fromkeys(r["holdout"] for r in rows))
    if all(sum(r["holdout"] == h for r in rows) < 2 for h in holdouts):
        return
    print("\n| held out | seeds | mean accuracy | sd | SE | min-max | mean val acc |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for h in holdouts:
        acc = [r["accuracy"] for r in rows if r["holdout"] == h]
        val = [r["val_accuracy"] for r in rows if r["holdout"] == h and "val_accuracy" in r]
        sd = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        val_text = f"{statistics.mean(val):.2%}" if val else ""
        if val and len(val) < len(acc):  # baseline rows that kept the accuracy alone
            val_text += f" ({len(val)} seeds)"
        print(f"| {h} | {len(acc)} | {statistics.mean(acc):.2%} | {sd:.2%} | {sd / len(acc) ** 0.5:.2%} | "
              f"{min(acc):.2%}-{max(acc):.2%} | "
              f"{val_text} |")


def load_rows(path: str) -> list[dict]:
    """The rows a run saved with --json."""
    return json.loads(Path(path).read_text())["rows"]


def merged_rows(paths: list[str]) -> list[dict]:
    """The rows of several saved runs as one run (seeds trained one process each, so that a stopped run loses one
    fold): a fold saved twice is an error, since its two rows could differ and the mean would count it twice."""
    rows, seen = [], {}
    for path in paths:
        for row in load_rows(path):
            fold = (row["holdout"], row["seed"])
            if fold in seen:
                raise SystemExit(f"held out {fold[0]}, seed {fold[1]} is in both {seen[fold]} and {path}")
            seen[fold] = path
            rows.append(row)
    return rows


def paired_changes(rows: list[dict], baseline: list[dict]) -> list[tuple[str, int, float, float]]:
    """(held out, seed, baseline accuracy, this run's accuracy) for every fold both runs have."""
    base = {(r["holdout"], r["seed"]): r["accuracy"] for r in baseline}
    return [(r["holdout"], r["seed"], base[(r["holdout"], r["seed"])], r["accuracy"]) for r in rows
            if (r["holdout"], r["seed"]) in base]


def print_paired(rows: list[dict], baseline: list[dict]) -> None:
    """Fold by fold against a saved run: a setting is told from the seed's draw by the paired change."""
    pairs = paired_changes(rows, baseline)
    if not pairs:
        print("\nno fold (held-out source and seed) in common with the baseline")
        return
    print("\n| held out | seed | baseline | this run | change |")
    print("|---|---:|---:|---:|---:|")
    for holdout, seed, before, after in pairs:
        print(f"| {holdout} | {seed} | {before:.2%} | {after:.2%} | {100 * (after - before):+.2f} |")
    changes = [100 * (after - before) for *_, before, after in pairs]
    se = statistics.stdev(changes) / len(changes) ** 0.5 if len(changes) > 1 else float("nan")
    print(f"\nover {len(pairs)} fold(s): mean change {statistics.mean(changes):+.2f} points (standard error "
          f"{se:.2f}), better on {sum(c > 0 for c in changes)}, worse on {sum(c < 0 for c in changes)}")


def print_tags(rows: list[dict], baseline: list[dict] | None = None) -> None:
    """Recall within each file-name tag and class, summed over the seeds (rows that recorded it): which
    source's photos a setting gains or loses. Against a baseline, on the folds both recorded."""
    if baseline is not None:
        base = {(r["holdout"], r["seed"]): r for r in baseline if "recall_by_tag" in r}
        rows = [r for r in rows if (r["holdout"], r["seed"]) in base]
        baseline = [base[(r["holdout"], r["seed"])] for r in rows]
    rows = [r for r in rows if "recall_by_tag" in r]
    if not rows:
        return

    def summed(some: list[dict]) -> dict[tuple[str, str], list[int]]:
        totals: dict[tuple[str, str], list[int]] = {}
        for r in some:
            for key, (right, n) in r["recall_by_tag"].items():
                total = totals.setdefault((r["holdout"], key), [0, 0])
                total[0] += right
                total[1] += n
        return totals

    this, before = summed(rows), summed(baseline or [])
    print(f"\n| held out | tag/class | photos × seeds | recall{' | baseline | change' if before else ''} |")
    print(f"|---|---|---:|---:{'|---:|---:' if before else ''}|")
    for (holdout, key), (right, n) in this.items():
        line = f"| {holdout} | {key} | {n} | {right / n:.1%}"
        if before:
            was = before[(holdout, key)][0] / before[(holdout, key)][1]
            line += f" | {was:.1%} | {100 * (right / n - was):+.1f}"
        print(line + " |")


def main() -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--holdout", default=DEFAULT_HOLDOUTS)
        parser.add_argument("--against", help="a saved run (--json) to compare with, fold by fold")
        parser.add_argument("--rows", action="append",
                            help="a saved run (--json) to report instead of training; several are merged")

    bench = recipe_bench("data folders (default: trashnet4 and mixed4)", "42", DEFAULT_DATA, options,
                         trains=lambda args: not args.rows)
    if bench is None:
        return 2
    args, data_dirs, overrides, configs = bench
    if args.rows:
        rows = merged_rows(args.rows)
        print_rows(rows)
        print_means(rows)
        if args.against:
            print_paired(rows, load_rows(args.against))
        print_tags(rows, load_rows(args.against) if args.against else None)
        return 0
    rows = []
    for config in configs:
        for holdout in args.holdout.split(","):
            rows.append({**run_fold(data_dirs, holdout, config), "seed": config.seed})
            save_rows(args, overrides, rows)
            r = rows[-1]
            print(f"== held out {holdout}, seed {config.seed}: {r['accuracy']:.2%} of {r['n_heldout']} photos "
                  f"(val {r['val_accuracy']:.2%}, {r['wall_s']:.0f} s)", flush=True)
    report(args, overrides, data_dirs, rows, print_rows, print_means)
    if args.against:
        print_paired(rows, load_rows(args.against))
    print_tags(rows, load_rows(args.against) if args.against else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
