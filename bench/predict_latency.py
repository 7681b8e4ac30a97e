"""One photo, JPEG bytes -> class probabilities, in every runtime, side by side in one run.

    python bench/predict_latency.py [--photo PATH] [--repeats 200] [--model PATH]

Rows: the decode/resize step alone; Keras `model.predict`; a Keras direct call (compiled); LiteRT float32
and int8 (the TFLite models, XNNPACK); the app's path (`Classifier.predict`, LiteRT float32); and the
Grad-CAM heat map computed on demand (goal: under 300 ms). Every row except the decode-only one includes
decoding the JPEG bytes. Prints p50/p90 in ms and file sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import DEFAULT_MODEL_PATH, default_data_dir  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 90))


APP_ROW = "app path: Classifier.predict (LiteRT float32)"


def measure(model_path: Path, jpeg: bytes, data_dir: Path | None, repeats: int) -> tuple[dict, dict, float]:
    """Every row's (p50, p90) for one model, its files' sizes, and how far the app's probabilities are from
    Keras' on the photo."""
    import tensorflow as tf

    from trashure.explain import Explainer
    from trashure.export import export_model
    from trashure.images import load_array
    from trashure.prediction import Classifier, load_keras_model
    from trashure.runtimes import tflite_runner

    model = load_keras_model(model_path)
    direct = tf.function(lambda x: model(x, training=False))
    out = Path(tempfile.mkdtemp())
    export_model(model_path, out, ["tflite", "tflite-int8"], 255, data_dir)
    lite_f32, lite_int8 = tflite_runner(out / "tflite"), tflite_runner(out / "tflite-int8")
    app = Classifier(model_path)
    explainer = Explainer(model_path)
    size = int(model.input_shape[1])  # 448 for a model that looks twice (trashure.glimpse)

    def decode():
        return load_array(jpeg, size)[None].astype(np.float32)

    rows = {
        "decode + resize only": timed(decode, repeats),
        "Keras model.predict": timed(lambda: model.predict(decode(), verbose=0), max(repeats // 4, 20)),
        "Keras direct call (tf.function)": timed(lambda: direct(decode()).numpy(), repeats),
        "LiteRT float32": timed(lambda: lite_f32(decode()), repeats),
        "LiteRT int8": timed(lambda: lite_int8(decode()), repeats),
        APP_ROW: timed(lambda: app.predict(jpeg), repeats),
        "Grad-CAM heat map, on demand (Explainer.explain, Keras)": timed(lambda: explainer.explain(jpeg),
                                                                         max(repeats // 4, 20)),
    }
    probs_keras = model.predict(decode(), verbose=0)[0]
    probs_app = np.array(list(app.predict(jpeg).probabilities.values()))
    sizes = {"keras": model_path.stat().st_size, "tflite float32": (out / "tflite/model.tflite").stat().st_size,
             "tflite int8": (out / "tflite-int8/model.tflite").stat().st_size}
    return rows, sizes, float(np.abs(probs_app - probs_keras).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", help="a JPEG (default: the first can photo of the data folder)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--model", type=Path, action="append",
                        help="a .keras model with its card (default: the shipped one); several are measured one "
                             "after the other in this run, e.g. older releases in models/releases/ to compare one "
                             "look, two looks, and two with the mirror image")
    args = parser.parse_args()
    data_dir = default_data_dir()
    photo = Path(args.photo) if args.photo else (sorted((data_dir / "can").glob("*.jpg"))[0] if data_dir else None)
    if photo is None or not photo.is_file():
        print("give --photo PATH (no data folder found)", file=sys.stderr)
        return 2
    jpeg = photo.read_bytes()
    print(f"photo: {photo.name} ({len(jpeg) / 1024:.0f} KB), {os.cpu_count()} CPU cores")
    app_p50 = {}
    for model_path in args.model or [DEFAULT_MODEL_PATH]:
        rows, sizes, gap = measure(model_path, jpeg, data_dir, args.repeats)
        app_p50[model_path] = rows[APP_ROW][0]
        print(f"\nmodel: {model_path}\n")
        print("| path (JPEG bytes -> probabilities) | p50 ms | p90 ms |")
        print("|---|---:|---:|")
        for name, (p50, p90) in rows.items():
            print(f"| {name} | {p50:.1f} | {p90:.1f} |")
        base = rows["Keras model.predict"][0]
        print(f"\napp path is {base / rows[APP_ROW][0]:.1f}x faster than model.predict at p50; "
              f"max |p_app - p_keras| = {gap:.2e}")
        print("sizes: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))
    if len(app_p50) > 1:
        first = next(iter(app_p50.values()))
        print("\napp path p50 against the first model's: "
              + ", ".join(f"{Path(m).parent.name or m}: {t / first:.2f}x" for m, t in app_p50.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
