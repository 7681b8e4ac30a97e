"""Bad model files: a clear ModelLoadError in the library, a message and exit 2 in the CLI, and an app
that still starts."""

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, cli
from trashure.config import DEFAULT_MODEL_PATH
from trashure.errors import ModelLoadError
from trashure.prediction import Classifier


def bad_models(tmp_path):
    missing = tmp_path / "missing.keras"
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(DEFAULT_MODEL_PATH.read_bytes()[: 200_000])
    wrong_format = tmp_path / "photo.keras"
    wrong_format.write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 1000)
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 100)
    mismatched = tmp_path / "mismatch" / "mobilenetv2_trashure.keras"
    mismatched.parent.mkdir()
    shutil.copy(DEFAULT_MODEL_PATH, mismatched)
    mismatched.with_suffix(".json").write_text(json.dumps({"classes": ["a", "b", "c"]}))
    return {missing: "does not exist", empty: "empty", truncated: "not a Keras .keras model file",
            wrong_format: "not a Keras .keras model file", h5: "not a Keras .keras model file",
            mismatched: "lists the classes a, b, c, but the model was trained with"}


def test_library_raises_clear_errors(tmp_path):
    for path, words in bad_models(tmp_path).items():
        with pytest.raises(ModelLoadError, match=words):
            Classifier(path)


def test_cli_reports_and_exits_2(tmp_path):
    image = tmp_path / "x.png"
    from conftest import photo

    photo((1, 2, 3)).save(image)
    for path, words in bad_models(tmp_path).items():
        result = cli("predict", "--model", path, image, timeout=300)
        assert result.returncode == 2, (path, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr


def test_app_starts_with_a_broken_model(tmp_path, monkeypatch):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"")
    monkeypatch.setenv("TRASHURE_MODEL", str(broken))
    monkeypatch.setenv("TRASHURE_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    assert not at.exception
    at.switch_page("pages/classify.py").run()
    assert not at.exception
    assert any("cannot be used" in e.value and "empty" in e.value for e in at.error)
