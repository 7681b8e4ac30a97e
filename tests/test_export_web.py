"""The web app's path in the official TF.js runtime, end to end on the real test split of the shipped model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import cli
from export_kit import CLASSES, SIZE, load_test_split, needs_node, reference_probabilities
from trashure.config import DEFAULT_MODEL_PATH
from trashure.runtimes import NODE_PROCESSES, load_runner, tfjs_predict

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def test_split(shipped_data):
    return load_test_split(shipped_data)


@pytest.fixture(scope="module")
def keras_probs(test_split):
    return reference_probabilities(test_split[1])


# Every 2nd test photo (186) for the web path: its Node run is ~0.5 s a photo and was the suite's slowest test
# on all 372; half keeps every class, and its accuracy is compared with Keras' on the same photos.
WEB_PATH_STEP = 2


@needs_node
def test_web_backend_contract_end_to_end(tmp_path, test_split, keras_probs):
    """--input-scale 1, loaded with tf.loadGraphModel, photo decoded, resized to the model's size (metadata.json)
    bilinear, /255, batch axis,
    4 probabilities in class order: exactly the web backend's steps, in the official runtime."""
    result = cli("export", "--model", DEFAULT_MODEL_PATH, "--out", tmp_path, "--formats", "tfjs,keras",
                 "--input-scale", "1", timeout=900)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "tfjs" / "metadata.json").read_text())
    assert meta["input"]["range"] == [0, 1] and (tmp_path / "tfjs" / "labels.txt").read_text().split() == CLASSES
    records, _, labels = test_split
    photos, labels = [r.path for r in records][::WEB_PATH_STEP], labels[::WEB_PATH_STEP]
    assert set(labels) == set(range(len(CLASSES)))
    dump = tmp_path / "inputs.f32"
    web = np.asarray(tfjs_predict(tmp_path / "tfjs", photos=photos, dump_inputs=dump, processes=NODE_PROCESSES)
                     ["probabilities"], dtype=np.float32)
    assert web.shape == (len(photos), 4)
    np.testing.assert_allclose(web.sum(1), 1.0, atol=1e-4)
    # The exact inputs the web path fed (decoded by jpeg-js, resized by TF.js, /255) give the same
    # probabilities through the Keras export with the same 0-1 input contract.
    inputs = np.fromfile(dump, dtype="<f4").reshape(len(photos), SIZE, SIZE, 3)
    assert 0.0 <= inputs.min() and inputs.max() <= 1.0
    reference = load_runner("keras", tmp_path / "keras")(inputs)
    assert np.array_equal(web.argmax(1), reference.argmax(1))
    assert np.abs(web - reference).max() < 1e-4
    # And the web path classifies these photos as well as the shipped model does through our own decoding
    # and resize (TF.js's bilinear resize differs from Pillow's a little).
    web_accuracy = (web.argmax(1) == labels).mean()
    keras_accuracy = (keras_probs[::WEB_PATH_STEP].argmax(1) == labels).mean()
    print(f"web path accuracy {web_accuracy:.2%} vs Keras {keras_accuracy:.2%} on the same {len(labels)} photos")
    assert abs(web_accuracy - keras_accuracy) <= 0.02
