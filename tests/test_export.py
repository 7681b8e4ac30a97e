"""Exports, each proven in its own runtime on the real test split of ../shared/data/trashnet4 (every format of the
shipped model exported once, then checked format by format). The web path's contract is in
test_export_web.py, the handling of output folders and bad requests in test_export_folders.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export_kit import CLASSES, SIZE, load_test_split, needs_node, reference_probabilities
from trashure.config import DEFAULT_MODEL_PATH
from trashure.export import FORMATS, INT8_CALIBRATION_PHOTOS, export_model
from trashure.runtimes import NODE_PROCESSES, load_runner, tfjs_predict

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def test_split(shipped_data):
    return load_test_split(shipped_data)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shipped_data):
    out = tmp_path_factory.mktemp("export")
    result = export_model(DEFAULT_MODEL_PATH, out, FORMATS, 255, shipped_data)
    return out, result


@pytest.fixture(scope="module")
def keras_probs(test_split):
    return reference_probabilities(test_split[1])


def test_every_format_is_written_with_labels_and_metadata(exported):
    out, result = exported
    assert list(result.formats) == list(FORMATS)
    expected_files = {"keras": "mobilenetv2_trashure.keras", "savedmodel": "saved_model/saved_model.pb",
                      "tflite": "model.tflite", "tflite-int8": "model.tflite", "tfjs": "model.json"}
    for fmt, main_file in expected_files.items():
        folder = out / fmt
        assert (folder / main_file).is_file()
        assert (folder / "labels.txt").read_text().split() == CLASSES
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["classes"] == CLASSES and meta["format"] == fmt
        assert meta["input"]["shape"] == [1, SIZE, SIZE, 3] and meta["input"]["color"] == "RGB"
        assert meta["metrics"]["test_accuracy"] > 0.5
        assert result.formats[fmt]["size_bytes"] > 1_000_000
    int8 = json.loads((out / "tflite-int8" / "metadata.json").read_text())
    assert int8["input"]["dtype"] == "uint8" and int8["output"]["dtype"] == "uint8"
    assert int8["calibration"]["images"] == INT8_CALIBRATION_PHOTOS == 100
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left over


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite"])
def test_float_formats_match_keras(exported, test_split, keras_probs, fmt):
    out, _ = exported
    probs = load_runner(fmt, out / fmt)(test_split[1])
    assert np.array_equal(probs.argmax(1), keras_probs.argmax(1))
    assert np.abs(probs - keras_probs).max() < 1e-4


# Every 6th test photo (62, each class among them): the WASM backend runs one thread in Node, ~0.5 s a photo for
# the four-pass model, and test_web_backend_contract_end_to_end checks the same graph (its 0-1 input
# variant) on all of them.
TFJS_PARITY_STEP = 6


@needs_node
def test_tfjs_in_the_official_runtime_matches_keras(exported, test_split, keras_probs):
    out, _ = exported
    images, labels = test_split[1][::TFJS_PARITY_STEP], test_split[2][::TFJS_PARITY_STEP]
    assert set(labels) == set(range(len(CLASSES)))
    result = tfjs_predict(out / "tfjs", batch=images, processes=NODE_PROCESSES)
    probs = np.asarray(result["probabilities"], dtype=np.float32)
    expected = keras_probs[::TFJS_PARITY_STEP]
    assert result["backend"] == "wasm"
    assert probs.shape == expected.shape
    assert np.array_equal(probs.argmax(1), expected.argmax(1))
    assert np.abs(probs - expected).max() < 1e-4


def test_int8_agrees_with_keras(exported, test_split, keras_probs):
    """The requirement: full-integer int8 (per-channel weights, 100 calibration photos) costs at most 1 point of
    the float model's test accuracy. It may gain more than that by chance (photos on a decision boundary that
    the rounding tips the right way), so the faithfulness check is top-1 agreement: at least 95%."""
    out, _ = exported
    probs = load_runner("tflite-int8", out / "tflite-int8")(test_split[1])
    labels = test_split[2]
    int8_top, keras_top = probs.argmax(1), keras_probs.argmax(1)
    agreement = (int8_top == keras_top).mean()
    keras_acc, int8_acc = (keras_top == labels).mean(), (int8_top == labels).mean()
    differ = int8_top != keras_top
    print(f"int8 top-1 agreement {agreement:.2%} ({differ.sum()} photos differ: int8 right on "
          f"{(differ & (int8_top == labels)).sum()}, Keras on {(differ & (keras_top == labels)).sum()}), "
          f"accuracy {int8_acc:.2%} vs keras {keras_acc:.2%}")
    assert int8_acc >= keras_acc - 0.01
    assert agreement >= 0.95
