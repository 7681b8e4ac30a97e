"""Run an exported model in the runtime it is for: Keras, SavedModel, LiteRT (TFLite) or TF.js (Node).

Each loader returns a function: a float32 NHWC batch in the export's input range -> float32 probabilities.
Used by the parity tests, the latency benchmark and the dashboard's export section.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trashure.config import MODEL_FILENAME, TFJS_TOOL_DIR
from trashure.errors import TrashureError

Runner = Callable[[np.ndarray], np.ndarray]

# Photos a call: a model that looks twice at the photo and its mirror image runs four passes on each, and a
# whole test split at once (372 photos, 744 in the mirrored batch) took over 20 GB in Keras and LiteRT.
CHUNK = 32
# Node processes for TF.js accuracy runs: the WASM backend runs one thread in Node, so one process a core.
NODE_PROCESSES = os.cpu_count() or 1


def in_chunks(run: Runner, size: int = CHUNK) -> Runner:
    """The same runner, fed `size` photos at a time, so that memory does not grow with the batch."""

    def chunked(batch: np.ndarray) -> np.ndarray:
        if len(batch) <= size:
            return run(batch)
        return np.concatenate([run(batch[i:i + size]) for i in range(0, len(batch), size)])

    return chunked


def keras_runner(folder: Path) -> Runner:
    import tensorflow as tf

    from trashure.prediction import load_keras_model

    model = load_keras_model(Path(folder) / MODEL_FILENAME)
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return in_chunks(lambda batch: np.asarray(forward(tf.constant(batch, tf.float32))))


def savedmodel_runner(folder: Path) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(Path(folder) / "saved_model"))
    serve = loaded.signatures["serving_default"]

    def run(batch: np.ndarray) -> np.ndarray:
        outputs = serve(tf.constant(batch, tf.float32))
        return np.asarray(next(iter(outputs.values())))

    return in_chunks(run)


def tflite_runner(folder_or_file: Path, threads: int | None = None) -> Runner:
    """Float or int8 TFLite in LiteRT; int8 inputs are quantised and outputs dequantised here."""
    from trashure.litert import LiteRTModel

    path = Path(folder_or_file)
    model = LiteRTModel(path / "model.tflite" if path.is_dir() else path, threads)
    (in_scale, in_zero), (out_scale, out_zero) = model.input_quantization, model.output_quantization
    quantized_in = model.input_dtype != np.float32
    quantized_out = model.output_dtype != np.float32
    info = np.iinfo(model.input_dtype) if quantized_in else None

    def run(batch: np.ndarray) -> np.ndarray:
        if quantized_in:
            batch = np.clip(np.round(batch / in_scale + in_zero), info.min, info.max).astype(model.input_dtype)
        out = model.run(batch)
        return (out.astype(np.float32) - out_zero) * out_scale if quantized_out else out

    return in_chunks(run)


def node_available() -> bool:
    return shutil.which("node") is not None and (TFJS_TOOL_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir()


def tfjs_predict(folder: Path, *, batch: np.ndarray | None = None, photos: list[Path] | None = None,
                 dump_inputs: Path | None = None, processes: int = 1) -> dict:
    """Run tools/tfjs/predict.mjs: the official @tensorflow/tfjs runtime (WASM backend) in Node.js.
    dump_inputs: also save the exact float32 inputs the model received (for parity checks).
    processes: Node processes sharing the photos in order. The WASM backend runs one thread in Node, so
    on a machine with n cores n processes finish n times sooner; keep 1 where ms_per_image is a latency."""
    if not node_available():
        raise TrashureError("Node.js and tools/tfjs/node_modules are needed: run `bash tools/tfjs/setup.sh`")
    n = len(batch) if batch is not None else len(photos or [])
    bounds = np.linspace(0, n, max(1, min(processes, n)) + 1).astype(int)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(len(bounds) - 1) as pool:
        parts = list(pool.map(lambda i: _tfjs_part(folder, Path(tmp) / str(i), bounds[i], bounds[i + 1], batch,
                                                   photos, dump_inputs is not None), range(len(bounds) - 1)))
        if dump_inputs:
            with open(dump_inputs, "wb") as out:
                for i in range(len(parts)):
                    out.write((Path(tmp) / str(i) / "inputs.f32").read_bytes())
    sizes = np.diff(bounds)
    return {"backend": parts[0]["backend"],
            "probabilities": [row for part in parts for row in part["probabilities"]],
            "ms_per_image": float(np.average([p["ms_per_image"] for p in parts], weights=sizes))}


def _tfjs_part(folder: Path, tmp: Path, start: int, stop: int, batch: np.ndarray | None,
               photos: list[Path] | None, dump: bool) -> dict:
    """One Node process on the photos start:stop (its files in tmp)."""
    tmp.mkdir()
    cmd = ["node", str(TFJS_TOOL_DIR / "predict.mjs"), str(folder)]
    if batch is not None:
        raw = tmp / "batch.f32"
        np.ascontiguousarray(batch[start:stop], dtype="<f4").tofile(raw)
        cmd += ["--tensor", str(raw), str(stop - start)]
    else:
        cmd += ["--photos", *map(str, (photos or [])[start:stop])]
    env = {**os.environ, **({"TRASHURE_DUMP_INPUT": str(tmp / "inputs.f32")} if dump else {})}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if result.returncode != 0:
        raise TrashureError(f"TF.js prediction failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def tfjs_runner(folder: Path) -> Runner:
    return lambda batch: np.asarray(tfjs_predict(Path(folder), batch=batch, processes=NODE_PROCESSES)
                                    ["probabilities"], dtype=np.float32)


LOADERS: dict[str, Callable[[Path], Runner]] = {
    "keras": keras_runner, "savedmodel": savedmodel_runner, "tflite": tflite_runner,
    "tflite-int8": tflite_runner, "tfjs": tfjs_runner,
}


def load_runner(fmt: str, folder: Path) -> Runner:
    return LOADERS[fmt](Path(folder))


def latency_ms(runner: Runner, image: np.ndarray, repeats: int = 20) -> dict[str, float]:
    """p50/p90 milliseconds of one-image predictions (after a warm-up call)."""
    batch = image[None].astype(np.float32)
    runner(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(batch)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90))}


def format_report(out_dir: Path, formats: list[str], image: np.ndarray, input_scale: int, repeats: int = 20,
                  test: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """One row per format: size in MB, p50/p90 latency of a single-photo prediction in its runtime, and
    with test photos (0-255, labels) its test accuracy and top-1 agreement with the Keras format."""
    rows = []
    scale = 255.0 if input_scale == 1 else 1.0
    x = image.astype(np.float32) / scale
    top1: dict[str, np.ndarray] = {}
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
            if test is not None:
                runner = load_runner(fmt, folder)
                probs = np.concatenate([runner(test[0][i:i + 64] / scale) for i in range(0, len(test[0]), 64)])
                top1[fmt] = probs.argmax(axis=1)
                row["test_accuracy"] = float(np.mean(top1[fmt] == test[1]))
        except TrashureError as exc:
            row.update(p50_ms=None, p90_ms=None, note=str(exc))
        rows.append(row)
    reference = top1.get("keras")
    for row in rows:
        if reference is not None and row["format"] in top1:
            row["agreement_with_keras"] = float(np.mean(top1[row["format"]] == reference))
    return rows


RUNTIME_NAMES = {"keras": "Keras 3 (TensorFlow)", "savedmodel": "tf.saved_model.load",
                 "tflite": "LiteRT (XNNPACK)", "tflite-int8": "LiteRT int8", "tfjs": "@tensorflow/tfjs (WASM, Node)"}
