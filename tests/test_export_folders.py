"""Exports and the folders they write: bad requests are refused with a clear message, a failed export leaves
nothing behind, and someone else's files are never replaced."""

from __future__ import annotations

import pytest

from conftest import cli
from trashure.config import DEFAULT_MODEL_PATH, TrainConfig
from trashure.export import ExportError, export_model

pytestmark = [pytest.mark.slow]


def test_bad_export_requests(tmp_path):
    from trashure.runs import create_run

    run = create_run(TrainConfig().to_dict(), tmp_path, tmp_path / "runs")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (cli("export", "--out", tmp_path / "o1", "--formats", "keras,onnx"), "unknown export format(s): onnx"),
        (cli("export", "--model", tmp_path / "none.keras", "--out", tmp_path / "o2"), "does not exist"),
        (cli("export", "--run", run.id, "--runs-dir", tmp_path / "runs", "--out", tmp_path / "o3"), "has no model"),
        (cli("export", "--out", blocker / "sub", "--formats", "keras"), "cannot write to"),
        (cli("export", "--out", tmp_path / "o4", "--input-scale", "7"), "invalid choice"),
    ]
    for result, words in cases:
        assert result.returncode != 0
        assert words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_failed_export_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    result = cli("export", "--out", out, "--formats", "keras,tfjs", env={"TRASHURE_TFJS_PYTHON": "/bin/false"})
    assert result.returncode == 2 and "converter failed" in result.stderr
    assert list(out.iterdir()) == []
    with pytest.raises(ExportError, match="tflite-int8 needs real training photos"):
        export_model(DEFAULT_MODEL_PATH, out, ["keras", "tflite-int8"], 255, None)
    assert list(out.iterdir()) == []


def test_a_format_folder_with_someone_elses_files_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    (out / "keras").mkdir(parents=True)
    (out / "keras" / "my_notes.txt").write_text("mine")
    result = cli("export", "--out", out, "--formats", "keras")
    assert result.returncode == 2 and "holds files Trashure did not write" in result.stderr
    assert (out / "keras" / "my_notes.txt").read_text() == "mine"
    # An earlier Trashure export is replaced; --overwrite replaces anything.
    (out / "tflite").mkdir()
    export_model(DEFAULT_MODEL_PATH, out, ["tflite"], 255, None)
    export_model(DEFAULT_MODEL_PATH, out, ["tflite"], 255, None)
    assert (out / "tflite" / "model.tflite").is_file()
    export_model(DEFAULT_MODEL_PATH, out, ["keras"], 255, None, overwrite=True)
    assert not (out / "keras" / "my_notes.txt").exists()


def test_the_converted_formats_are_made_from_one_savedmodel_export(tmp_path, monkeypatch):
    """The SavedModel, TFLite and TF.js formats come from one SavedModel export of the model (each costs ~7 s);
    the copy in the SavedModel format's folder serves, and the TFLite file is the one a direct conversion makes."""
    import keras

    from trashure.litert import to_tflite
    from trashure.prediction import load_model_and_card

    exports = []
    real = keras.Model.export

    def counted(model, path, *args, **kwargs):
        exports.append(path)
        return real(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "export", counted)
    result = export_model(DEFAULT_MODEL_PATH, tmp_path / "out", ["savedmodel", "tflite"], 255, None)
    assert len(exports) == 1 and list(result.formats) == ["savedmodel", "tflite"]
    assert (tmp_path / "out" / "savedmodel" / "saved_model" / "saved_model.pb").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    model = load_model_and_card(DEFAULT_MODEL_PATH)[0]
    assert (tmp_path / "out" / "tflite" / "model.tflite").read_bytes() == to_tflite(model)
