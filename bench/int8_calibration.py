"""How many calibration photos the int8 export needs: agreement with Keras on the validation part.

    python bench/int8_calibration.py [--photos 50,100,200] [--draws 0,1,2] [--json OUT]

Full-integer quantisation runs the representative photos through the model to choose each tensor's range; on 2
cores that calibration is most of the int8 export's time (the four-look 448x448 model on TFLite's reference
kernels). For each number of photos and each seed of their draw from the shipped model's training part, this
converts the shipped model as `trashure.export` does (`representative_images` then `to_tflite`, timed) and scores
the int8 file on the validation part of the model's own split: top-1 agreement with the .keras file and accuracy
beside Keras'. The validation part chooses the default; the test part is left for the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import DEFAULT_MODEL_PATH, SHARED_DATA_DIR  # noqa: E402


def int8_file(model, card: dict, data: list[Path], photos: int, draw: int, out: Path) -> float:
    """Write the int8 conversion calibrated on `photos` training photos of draw `draw`; its seconds."""
    from trashure.export import representative_images
    from trashure.litert import to_tflite

    start = time.perf_counter()
    samples = representative_images(card, data, limit=photos, seed=draw)
    (out / "model.tflite").write_bytes(to_tflite(model, samples))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", default="50,100,200")
    parser.add_argument("--draws", default="0,1,2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from trashure.export import part_set
    from trashure.prediction import load_model_and_card
    from trashure.runtimes import load_runner

    model, card, _ = load_model_and_card(DEFAULT_MODEL_PATH)
    data = [SHARED_DATA_DIR / name for name in card["data"]["folders"]]  # the folders its card names
    missing = [d for d in data if not d.is_dir()]
    if missing:
        sys.exit(f"needs the shipped model's data folders: {', '.join(map(str, missing))} not found")
    images, labels = part_set(card, data, "val")
    keras_top = load_runner("keras", DEFAULT_MODEL_PATH.parent)(images).argmax(1)
    keras_acc = float((keras_top == labels).mean())
    print(f"validation part: {len(labels)} photos, Keras {keras_acc:.2%}", flush=True)
    rows = []
    for draw in map(int, args.draws.split(",")):
        for photos in map(int, args.photos.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                seconds = int8_file(model, card, data, photos, draw, Path(tmp))
                top = load_runner("tflite-int8", Path(tmp))(images).argmax(1)
            row = {"photos": photos, "draw": draw, "convert_s": round(seconds, 1),
                   "agreement": float((top == keras_top).mean()), "int8_accuracy": float((top == labels).mean()),
                   "keras_accuracy": keras_acc, "val_photos": int(len(labels))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nphotos | draws | convert s (mean) | agreement mean (min) | int8 - Keras, points, mean (worst)")
    for photos in sorted({r["photos"] for r in rows}):
        mine = [r for r in rows if r["photos"] == photos]
        agree = [r["agreement"] for r in mine]
        delta = [100 * (r["int8_accuracy"] - keras_acc) for r in mine]
        print(f"{photos:6d} | {len(mine):5d} | {np.mean([r['convert_s'] for r in mine]):16.1f} | "
              f"{np.mean(agree):.2%} ({min(agree):.2%}) | {np.mean(delta):+.2f} ({min(delta):+.2f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
