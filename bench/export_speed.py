"""How long an export of every format takes, with one SavedModel shared by the converted formats against one
SavedModel exported for each of them (the way before), side by side in one run.

    python bench/export_speed.py [--rounds 2] [--formats keras,savedmodel,tflite,tflite-int8,tfjs]

`trashure.export` exports the served model as a SavedModel once per export and converts the SavedModel, TFLite,
int8 and TF.js formats from it. The other way is reproduced here by making each format export its own copy.
Both ways export the shipped model to the same formats (int8 calibrated on the shipped model's training part,
so the real photos must be beside the repo) and each format's seconds are printed with the ratio (the model's
loading, the same both ways, left out). The files are checked to be the same: the float TFLite file byte for
byte, the int8 file's size. (A SavedModel's files differ between any two exports of one model, even made the
same way: its functions and variables get fresh generated names.)
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import DEFAULT_MODEL_PATH, SHARED_DATA_DIR  # noqa: E402


def timed_export(out: Path, formats: list[str], data: list[Path], shared: bool) -> dict[str, float]:
    """Seconds per format (the model's loading under `load`) of one export of the shipped model into out."""
    import trashure.export as export

    marks, last = {}, [time.perf_counter()]

    def echo(line: str) -> None:  # "exporting FMT" marks the end of what came before
        now = time.perf_counter()
        marks[current[0]] = now - last[0]
        current[0], last[0] = line.removeprefix("exporting "), now

    current = ["load"]
    separate = iter(range(100))

    def own_copy(served, staging: Path) -> Path:
        folder = staging / f".savedmodel-{next(separate)}"
        export.export_savedmodel(served, folder)
        return folder

    with mock.patch.object(export, "_shared_saved_model", export._shared_saved_model if shared else own_copy):
        export.export_model(DEFAULT_MODEL_PATH, out, formats, 255, data, echo=echo)
    echo("exporting done")
    return marks


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--formats", default="keras,savedmodel,tflite,tflite-int8,tfjs")
    args = parser.parse_args()
    from trashure.modelfile import read_card

    card = read_card(DEFAULT_MODEL_PATH)
    data = [SHARED_DATA_DIR / name for name in card["data"]["folders"]]
    if missing := [str(d) for d in data if not d.is_dir()]:
        sys.exit(f"needs the shipped model's data folders: {', '.join(missing)} not found")
    formats = args.formats.split(",")
    totals = {"per format": [], "shared": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            ways = ("per format", "shared") if r % 2 == 0 else ("shared", "per format")  # warm-up favours neither
            for way in ways:
                out = Path(tmp) / f"{way.replace(' ', '-')}-{r}"
                marks = timed_export(out, formats, data, shared=way == "shared")
                totals[way].append(sum(v for k, v in marks.items() if k != "load"))
                print(f"round {r} {way:10s} " + "  ".join(f"{k} {v:.1f}s" for k, v in marks.items())
                      + f"  | formats {totals[way][-1]:.1f}s", flush=True)
        old, new = Path(tmp) / "per-format-0", Path(tmp) / "shared-0"  # rounds alternate which way goes first
        if (old / "tflite/model.tflite").exists():
            same = digest(old / "tflite/model.tflite") == digest(new / "tflite/model.tflite")
            print(f"tflite/model.tflite: the same bytes both ways: {same}")
        if (old / "tflite-int8/model.tflite").exists():
            sizes = [(p / "tflite-int8/model.tflite").stat().st_size for p in (old, new)]
            print(f"tflite-int8/model.tflite: {sizes[0]} and {sizes[1]} bytes")
    old_s, new_s = min(totals["per format"]), min(totals["shared"])
    print(f"every format ({', '.join(formats)}), the fastest of {args.rounds} round(s) each: "
          f"a SavedModel per format {old_s:.1f} s, one shared {new_s:.1f} s: "
          f"{old_s / new_s:.2f}x faster ({old_s - new_s:.1f} s less)")


if __name__ == "__main__":
    main()
