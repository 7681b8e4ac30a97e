"""A model's test figures without the test photos that have a near-duplicate in its training data.

    python bench/leakage.py [--model models/shipped/mobilenetv2_trashure.keras] [--data DIR ...]

A model trained on a plain split (before the leakage-safe split was the default) may have been tested on
copies of photos it trained on: same bytes, or perceptual hashes at most 6 bits apart (trashure.fingerprints).
This reads the model's own predictions of its test part (the run's predictions.csv), finds the test photos
whose near-duplicate group reaches its training or validation part, and prints the accuracy on those and on
the others, overall and per source, with 95% Wilson intervals. Nothing is re-run.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import DEFAULT_MODEL_PATH, SHARED_DATA_DIR, TrainConfig  # noqa: E402
from trashure.evaluation import wilson_interval  # noqa: E402
from trashure.fingerprints import checked_dataset, near_duplicate_groups, split_for  # noqa: E402
from trashure.modelfile import read_card  # noqa: E402


def leaking_test_photos(data_dirs: list[Path], config: TrainConfig, classes) -> set[str]:
    """'source/relpath' of the test photos whose near-duplicate group reaches the training or validation part
    of the split the config made."""
    dataset, fingerprints = checked_dataset(data_dirs, classes)
    split = split_for(dataset, fingerprints, config)
    part = {(r.source, r.relpath): name for name in ("train", "val", "test") for r in split.part(name)}
    leaking: set[str] = set()
    for group in near_duplicate_groups(fingerprints):
        records = [dataset.records[i] for i in group]
        parts = {part[(r.source, r.relpath)] for r in records}
        if "test" in parts and parts - {"test"}:
            leaking |= {f"{r.source}/{r.relpath}" for r in records if part[(r.source, r.relpath)] == "test"}
    return leaking


def line(name: str, rows: list[dict]) -> str:
    right = sum(r["true"] == r["predicted"] for r in rows)
    if not rows:
        return f"| {name} | 0 | – | – |"
    low, high = wilson_interval(right, len(rows))
    return f"| {name} | {len(rows)} | {100 * right / len(rows):.2f}% | {100 * low:.1f}–{100 * high:.1f}% |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--data", type=Path, action="append", help="the model's data folders (default: its card's)")
    args = parser.parse_args()
    card = read_card(args.model)
    dirs = args.data or [SHARED_DATA_DIR / name for name in card["data"]["folders"]]
    if not all(d.is_dir() for d in dirs):
        print(f"skipped: the model's data folders are not all here ({', '.join(map(str, dirs))})")
        return 0
    config = TrainConfig.from_dict(card.get("training", {}))
    leaking = leaking_test_photos(dirs, config, card["classes"])
    with open(args.model.with_name(args.model.stem + ".predictions.csv")) as f:
        rows = list(csv.DictReader(f))
    key = lambda r: f"{r['source']}/{r['file']}"  # noqa: E731
    clean = [r for r in rows if key(r) not in leaking]
    print(f"{args.model}: split {'leakage-safe' if config.leakage_safe_split else 'plain'}, seed {config.seed}; "
          f"{len(rows) - len(clean)} of {len(rows)} test photos have a near-duplicate in training or validation\n")
    print("| test photos | n | accuracy | 95% interval |\n|---|---:|---:|---:|")
    print(line("all", rows))
    print(line("with a near-duplicate in training/validation", [r for r in rows if key(r) in leaking]))
    print(line("**without one**", clean))
    for source in sorted({r["source"] for r in rows}):
        print(line(f"without one: {source}", [r for r in clean if r["source"] == source]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
