"""Exports for web and mobile apps: .keras, SavedModel, TFLite float32 and int8, TF.js graph model.

Each format gets its own folder with the model, `labels.txt` (one class a line, in output order) and
`metadata.json` (input contract, output meaning, source run and metrics), as Teachable Machine ships its
exports. Everything is built in a temporary folder beside the output and moved into place only when every
requested format succeeded, so a failed export leaves no half-written files behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from trashure.config import MODEL_FILENAME, TFJS_TOOL_DIR
from trashure.errors import TrashureError

if TYPE_CHECKING:  # keras loads lazily: importing this module stays cheap
    import keras

    from trashure.data import DataDirs, ImageRecord

FORMATS = ("keras", "savedmodel", "tflite", "tflite-int8", "tfjs")
TFLITE_NAME = "model.tflite"
# Training photos the int8 calibration runs through the model: the low end of TFLite's "~100-500"; on the
# shipped model's validation part 100 agree with Keras as well as 200 over three draws, in half the time
# (bench/int8_calibration.py, docs/experiments.md).
INT8_CALIBRATION_PHOTOS = 100
SHARED_SAVED_MODEL = ".savedmodel"  # in the staging folder: what the converted formats are made from


class ExportError(TrashureError):
    """An export cannot be made (unknown format, unwritable folder, missing converter or data)."""


@dataclass
class ExportResult:
    out_dir: Path
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)  # format -> {dir, files, size_bytes}


def parse_formats(text: str | Sequence[str]) -> list[str]:
    names = [f.strip() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise ExportError(f"unknown export format(s): {', '.join(unknown) or '(none)'}; "
                          f"choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def serving_model(model: keras.Model, input_scale: int) -> keras.Model:
    """The model with the input range a client feeds: 255 -> pixels 0-255; 1 -> pixels / 255 (0-1)."""
    if input_scale == 255:
        return model
    if input_scale != 1:
        raise ExportError(f"--input-scale must be 255 or 1, not {input_scale}")
    import keras
    from keras import layers

    pixels = keras.Input(model.input_shape[1:], name="image")
    x = layers.Rescaling(255.0, name="from_unit_range")(pixels)  # 0-1 -> 0-255, then the model's own scaling
    return keras.Model(pixels, model(x), name=f"{model.name}_unit_input")


def input_size(card: dict[str, Any]) -> int:
    """The photo size the card's model takes (448 for a model that looks twice; 224 for one pass)."""
    shape = (card.get("input") or {}).get("shape") or [None, 224]
    return int(shape[1] or 224)


def metadata(fmt: str, classes: Sequence[str], input_scale: int, card: dict[str, Any], source: Path,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    size = input_size(card)
    return {
        "format": fmt,
        "classes": list(classes),
        "labels_file": "labels.txt",
        "input": {
            "shape": [1, size, size, 3], "layout": "NHWC", "color": "RGB", "dtype": "float32",
            "range": [0, 255] if input_scale == 255 else [0, 1],
            "preprocessing": (f"decode the photo to RGB (EXIF orientation applied), resize to {size}x{size} "
                              "(bilinear, no crop)" + ("" if input_scale == 255 else ", divide by 255")
                              + "; the model scales to [-1, 1] itself"),
        },
        "output": {"shape": [1, len(classes)], "dtype": "float32",
                   "meaning": "softmax probabilities, one per class in labels.txt order"},
        "source": {"model": str(source), "run_id": card.get("run_id"), "trained_at": card.get("trained_at")},
        "metrics": {k: card.get("metrics", {}).get(k) for k in ("test_accuracy", "test_loss", "test_images")},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }


def split_part(card: dict[str, Any], data_dir: DataDirs, part: str) -> list[ImageRecord]:
    """The records of one part (train/val/test) of the split the card's model was trained with."""
    from trashure.config import TrainConfig
    from trashure.data import data_dirs_list
    from trashure.fingerprints import checked_dataset, split_for

    dirs = data_dirs_list(data_dir) if data_dir else []
    if not dirs or not all(Path(d).is_dir() for d in dirs):
        raise ExportError("this needs the real photos the model was trained on: give --data DATA_DIR "
                          "(the folder or folders the model was trained on)")
    config = TrainConfig.from_dict(card.get("training", {}))
    dataset, fingerprints = checked_dataset(dirs, card.get("classes"))
    return split_for(dataset, fingerprints, config).part(part)


def _load_records(records, size: int) -> tuple[np.ndarray, np.ndarray]:
    from trashure.images import load_array

    images, labels = [], []
    for record in records:
        try:
            images.append(load_array(record.path, size))
        except TrashureError:
            continue
        labels.append(record.label)
    if not images:
        raise ExportError("none of the photos could be read")
    return np.stack(images).astype(np.float32), np.array(labels)


def representative_images(card: dict[str, Any], data_dir: DataDirs, limit: int = INT8_CALIBRATION_PHOTOS,
                          seed: int = 0) -> np.ndarray:
    """Real training photos (the card's split, over every data folder given) for full-integer quantisation:
    `limit` of them, drawn with `seed` (bench/int8_calibration.py measures how many are needed)."""
    try:
        train = split_part(card, data_dir, "train")
    except ExportError:
        raise ExportError("tflite-int8 needs real training photos for its calibration: give --data DATA_DIR "
                          "(the folder or folders the model was trained on)") from None
    rng = np.random.default_rng(seed)
    return _load_records([train[i] for i in rng.permutation(len(train))[:limit]], input_size(card))[0]


def part_set(card: dict[str, Any], data_dir: DataDirs, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(images 0-255, labels) of one part (train/val/test) of the card's split, at the model's input size."""
    return _load_records(split_part(card, data_dir, part), input_size(card))


def test_set(card: dict[str, Any], data_dir: DataDirs) -> tuple[np.ndarray, np.ndarray]:
    """(images 0-255, labels) of the test part of the card's split: what every format is scored on."""
    return part_set(card, data_dir, "test")


def _write_common(folder: Path, fmt: str, classes, input_scale, card, source, extra=None) -> None:
    (folder / "labels.txt").write_text("\n".join(classes) + "\n")
    (folder / "metadata.json").write_text(json.dumps(metadata(fmt, classes, input_scale, card, source, extra),
                                                     indent=2) + "\n")


def export_savedmodel(model: keras.Model, folder: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(folder), format="tf_saved_model", verbose=False)


def tfjs_converter_command() -> list[str]:
    """How to run the official converter: its own virtual environment (see tools/tfjs/README.md)."""
    python = Path(os.environ.get("TRASHURE_TFJS_PYTHON", TFJS_TOOL_DIR / ".venv" / "bin" / "python"))
    if not python.exists():
        raise ExportError(f"the TF.js converter environment is missing ({python}); create it with "
                          "`bash tools/tfjs/setup.sh` (pip-installs tensorflowjs in its own venv)")
    return [str(python), str(TFJS_TOOL_DIR / "convert.py")]


def export_tfjs(savedmodel_dir: Path, folder: Path) -> None:
    cmd = [*tfjs_converter_command(), str(savedmodel_dir), str(folder)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not (folder / "model.json").exists():
        raise ExportError(f"the TF.js converter failed:\n{result.stderr.strip()[-2000:]}")


def export_model(model_path: str | Path, out_dir: str | Path, formats: Sequence[str] = FORMATS,
                 input_scale: int = 255, data_dir: str | Path | None = None,
                 echo: Callable[[str], None] | None = None, classes: Sequence[str] | None = None,
                 overwrite: bool = False) -> ExportResult:
    """Export a model to the requested formats under out_dir/<format>/ (see the module docstring). A format
    folder that holds files Trashure did not write is refused unless overwrite."""
    from trashure.prediction import load_model_and_card

    echo = echo or (lambda _m: None)
    formats = parse_formats(formats)
    if input_scale not in (1, 255):
        raise ExportError(f"--input-scale must be 255 or 1, not {input_scale}")
    if not overwrite:
        for fmt in formats:
            check_replaceable(Path(out_dir) / fmt, fmt)
    if "tfjs" in formats:
        tfjs_converter_command()  # fail before any work when the converter is not there
    model_path = Path(model_path)
    model, card, classes = load_model_and_card(model_path, classes)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    except OSError as exc:
        raise ExportError(f"cannot write to {out_dir}: {exc.strerror}") from None

    result = ExportResult(out_dir)
    try:
        served = serving_model(model, input_scale)
        for fmt in formats:
            echo(f"exporting {fmt}")
            folder = staging / fmt
            folder.mkdir()
            extra = _write_format(fmt, served, folder, staging, card, data_dir, input_scale, classes, model_path)
            _write_common(folder, fmt, classes, input_scale, card, model_path, extra)
        shutil.rmtree(staging / SHARED_SAVED_MODEL, ignore_errors=True)
        for fmt in formats:
            result.formats[fmt] = _move_into_place(staging, out_dir, fmt)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return result


def _shared_saved_model(served: keras.Model, staging: Path) -> Path:
    """The served model's SavedModel, exported once per export: the SavedModel, TFLite, int8 and TF.js formats
    are all converted from it (each export of it takes ~7 s here)."""
    folder = staging / SHARED_SAVED_MODEL
    if not folder.exists():
        export_savedmodel(served, folder)
    return folder


def _write_format(fmt: str, served: keras.Model, folder: Path, staging: Path, card: dict[str, Any], data_dir,
                  input_scale: int, classes: Sequence[str], model_path: Path) -> dict[str, Any]:
    """Write one format's model files into folder; returns what its metadata.json adds to the common fields."""
    from trashure.litert import saved_model_to_tflite

    if fmt == "keras":
        served.save(folder / MODEL_FILENAME)
        return {}
    if fmt == "savedmodel":
        shutil.copytree(_shared_saved_model(served, staging), folder / "saved_model")
        return {"signature": {"name": "serving_default", "tags": ["serve"]}}
    if fmt == "tflite":
        (folder / TFLITE_NAME).write_bytes(saved_model_to_tflite(_shared_saved_model(served, staging)))
        return {}
    if fmt == "tflite-int8":
        return _write_int8(served, folder, staging, card, data_dir, input_scale, classes, model_path)
    export_tfjs(_shared_saved_model(served, staging), folder)
    return {"load_with": "tf.loadGraphModel('model.json')"}


def _write_int8(served: keras.Model, folder: Path, staging: Path, card: dict[str, Any], data_dir,
                input_scale: int, classes: Sequence[str], model_path: Path) -> dict[str, Any]:
    """Full-integer quantisation calibrated on real training photos; uint8 in and out."""
    from trashure.data import data_dirs_list
    from trashure.litert import saved_model_to_tflite

    samples = representative_images(card, data_dir)  # first: without the photos there is nothing to convert
    if input_scale == 1:
        samples = samples / 255.0
    (folder / TFLITE_NAME).write_bytes(saved_model_to_tflite(_shared_saved_model(served, staging), samples))
    quantization = _int8_io(folder / TFLITE_NAME)
    return {"quantization": quantization,
            "input": {**metadata("tflite-int8", classes, input_scale, card, model_path)["input"],
                      "dtype": "uint8", "quantized": quantization["input"]},
            "output": {"shape": [1, len(classes)], "dtype": "uint8",
                       "meaning": "quantised softmax probabilities: p = scale * (q - zero_point)",
                       "quantized": quantization["output"]},
            "calibration": {"images": len(samples),
                            "from": "training split of " + ", ".join(str(d) for d in data_dirs_list(data_dir))}}


def _move_into_place(staging: Path, out_dir: Path, fmt: str) -> dict[str, Any]:
    """Swap a format's finished folder in for the old one (kept in staging until the export ends)."""
    final = out_dir / fmt
    if final.exists():
        final.rename(staging / f".old-{fmt}")
    (staging / fmt).rename(final)
    files = sorted(p for p in final.rglob("*") if p.is_file())
    return {"dir": str(final), "files": [str(p.relative_to(final)) for p in files],
            "size_bytes": sum(p.stat().st_size for p in files)}


def check_replaceable(folder: Path, fmt: str) -> None:
    """A format folder may be replaced when it is absent, empty, or an earlier Trashure export of that
    format (its metadata.json says so); anything else may be someone's work."""
    try:
        if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
            return
        written = json.loads((folder / "metadata.json").read_text()).get("format") == fmt
    except (OSError, ValueError, AttributeError):
        written = False
    if not written:
        raise ExportError(f"{folder} exists and holds files Trashure did not write; an export would replace it. "
                          "Choose another --out, move the files, or pass --overwrite.")


def _int8_io(path: Path) -> dict[str, Any]:
    from trashure.litert import LiteRTModel

    m = LiteRTModel(path)
    (si, zi), (so, zo) = m.input_quantization, m.output_quantization
    return {"input": {"dtype": str(m.input_dtype), "scale": float(si), "zero_point": int(zi)},
            "output": {"dtype": "uint8", "scale": float(so), "zero_point": int(zo)}}


def zip_folder(folder: str | Path) -> bytes:
    """One format's folder as a zip (for a download button)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))
    return buf.getvalue()
