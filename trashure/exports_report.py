"""What the dashboard shows after an export: per format its size and measured latency on one photo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trashure.errors import TrashureError


def format_report(out_dir: Path, formats: list[str], image: np.ndarray, input_scale: int,
                  repeats: int = 20) -> list[dict[str, Any]]:
    """One row per format: size in MB and p50/p90 latency of a single-photo prediction in its runtime."""
    from trashure.runtimes import latency_ms, load_runner, tfjs_predict

    rows = []
    x = image.astype(np.float32) / (255.0 if input_scale == 1 else 1.0)
    for fmt in formats:
        folder = Path(out_dir) / fmt
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        row: dict[str, Any] = {"format": fmt, "size_mb": round(size / 1e6, 2), "runtime": RUNTIME_NAMES[fmt]}
        try:
            if fmt == "tfjs":
                result = tfjs_predict(folder, batch=np.repeat(x[None], repeats, axis=0))
                row.update(p50_ms=round(result["ms_per_image"], 1), p90_ms=None)
            else:
                timing = latency_ms(load_runner(fmt, folder), x, repeats)
                row.update(p50_ms=round(timing["p50"], 1), p90_ms=round(timing["p90"], 1))
        except TrashureError as exc:
            row.update(p50_ms=None, p90_ms=None, note=str(exc))
        rows.append(row)
    return rows


RUNTIME_NAMES = {"keras": "Keras 3 (TensorFlow)", "savedmodel": "tf.saved_model.load",
                 "tflite": "LiteRT (XNNPACK)", "tflite-int8": "LiteRT int8", "tfjs": "@tensorflow/tfjs (WASM, Node)"}
