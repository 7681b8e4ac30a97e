"""Trust in model files: a model, its sealed classes, its card and its twin belong together or are refused;
shipping is one atomic step with every earlier model kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, cli, make_dataset, photo
from trashure.config import DEFAULT_MODEL_PATH
from trashure.errors import ModelLoadError, RunError
from trashure.modelfile import sealed_facts
from trashure.prediction import Classifier




@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> dict[str, Path]:
    """Keras models that are not Trashure classifiers, saved without cards."""
    import keras

    folder = tmp_path_factory.mktemp("foreign")
    vector = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    small = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax")])
    three = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    out = {}
    for name, model in {"vector": vector, "small": small, "three": three}.items():
        out[name] = folder / f"{name}.keras"
        model.save(out[name])
    return out


def copy_shipped(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".keras", ".json", ".tflite"):
        shutil.copy(DEFAULT_MODEL_PATH.with_suffix(suffix), folder / DEFAULT_MODEL_PATH.with_suffix(suffix).name)
    return folder / DEFAULT_MODEL_PATH.name


def can_photo() -> bytes:
    import io

    buf = io.BytesIO()
    photo((180, 30, 30), (224, 224), seed=5).save(buf, "JPEG")
    return buf.getvalue()


def test_the_shipped_model_seals_its_classes_and_its_card_records_both_hashes():
    from trashure.weights import sha256_file

    card = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    assert sealed_facts(DEFAULT_MODEL_PATH)["classes"] == card["classes"] == [
        "can", "glass_bottle", "other", "plastic_bottle"]
    assert card["model_sha256"] == sha256_file(DEFAULT_MODEL_PATH)
    assert card["tflite"]["source_sha256"] == card["model_sha256"]
    assert card["tflite"]["sha256"] == sha256_file(DEFAULT_MODEL_PATH.with_suffix(".tflite"))


def test_a_card_with_its_classes_reordered_is_refused(tmp_path):
    model = copy_shipped(tmp_path / "m")
    card = json.loads(model.with_suffix(".json").read_text())
    card["classes"] = ["plastic_bottle", "glass_bottle", "other", "can"]
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="lists the classes plastic_bottle.*trained with can"):
        Classifier(model)


def test_a_card_of_another_model_is_refused(tmp_path):
    model = copy_shipped(tmp_path / "m")
    card = json.loads(model.with_suffix(".json").read_text())
    card["model_sha256"] = "0" * 64
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="describes another model file"):
        Classifier(model)


@pytest.mark.slow
def test_a_twin_of_another_model_is_never_run(tmp_path):
    """A .tflite beside the model that is not the file the card records (a half-done copy) is ignored:
    the model itself is converted and used."""
    model = copy_shipped(tmp_path / "m")
    other = Classifier(DEFAULT_MODEL_PATH)
    model.with_suffix(".tflite").write_bytes(b"TFL3" + b"\0" * 1000)  # not the recorded twin
    from trashure.prediction import tflite_for

    assert isinstance(tflite_for(model), bytes)  # converted, not the sibling file
    assert Classifier(model).predict(can_photo()).probabilities == pytest.approx(
        other.predict(can_photo()).probabilities, abs=1e-4)


def test_foreign_models_are_refused_in_one_line(foreign):
    with pytest.raises(ModelLoadError, match=r"takes inputs of shape \(8,\), not square RGB photos"):
        Classifier(foreign["vector"], backend="keras")
    with pytest.raises(ModelLoadError, match="has no card and no class list of its own.*--classes"):
        Classifier(foreign["small"], backend="keras")
    with pytest.raises(ModelLoadError, match="has no card and no class list of its own, so its 3 outputs"):
        Classifier(foreign["three"], backend="keras")
    named = Classifier(foreign["small"], backend="keras", classes=["a", "b", "c", "d"])
    assert named.classes == ("a", "b", "c", "d") and named.image_size == 64
    with pytest.raises(ModelLoadError, match="4 outputs but 3 class names are given"):
        Classifier(foreign["small"], backend="keras", classes=["a", "b", "c"])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_the_cli_refuses_foreign_models_without_a_traceback(foreign, tmp_path, command):
    image = tmp_path / "x.png"
    photo((1, 2, 3)).save(image)
    args = [str(image)] if command == "predict" else ["--data", str(make_dataset(tmp_path / "data", per_class=3))]
    for name, words in {"vector": "not square RGB photos", "small": "--classes"}.items():
        result = cli(command, "--model", foreign[name], *args, timeout=300)
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def fake_run(runs_dir: Path, run_id: str, state: str, note: str):
    """A run folder holding a copy of the shipped model made distinct by a sealed note."""
    from trashure.modelfile import seal_facts, twin_record
    from trashure.runs import create_run
    from trashure.weights import sha256_file

    run = create_run({"mode": "fast"}, [REPO], runs_dir, run_id=run_id)
    shutil.copy(DEFAULT_MODEL_PATH, run.model_path)
    shutil.copy(DEFAULT_MODEL_PATH.with_suffix(".tflite"), run.model_path.with_suffix(".tflite"))
    seal_facts(run.model_path, {"classes": ["can", "glass_bottle", "other", "plastic_bottle"], "note": note})
    card = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    card.update(run_id=run_id, model_sha256=sha256_file(run.model_path),
                tflite=twin_record(run.model_path, run.model_path.with_suffix(".tflite")))
    (run.dir / "model_card.json").write_text(json.dumps(card))
    run.update_status(state=state)
    return run


@pytest.fixture
def models_dir(tmp_path) -> Path:
    """A models folder with one release shipped."""
    from trashure.shipping import promote

    folder = tmp_path / "models"
    promote(fake_run(tmp_path / "runs", "first", "done", "first"), folder, echo=lambda _m: None)
    return folder


def shipped_note(models_dir: Path) -> str:
    from trashure.shipping import shipped_path

    path = shipped_path(models_dir)
    Classifier(path)  # model, card and twin belong together
    return sealed_facts(path)["note"]


def test_promote_switches_every_file_at_once_and_undo_restores(models_dir, tmp_path):
    from trashure.shipping import current_release, promote, releases, undo

    assert shipped_note(models_dir) == "first"
    promote(fake_run(tmp_path / "runs", "second", "done", "second"), models_dir, echo=lambda _m: None)
    assert shipped_note(models_dir) == "second" and releases(models_dir) == ["first", "second"]
    assert (models_dir / "shipped" / "mobilenetv2_trashure.predictions.csv").exists() is False  # none recorded
    undo(models_dir, echo=lambda _m: None)
    assert shipped_note(models_dir) == "first" and current_release(models_dir) == "first"
    with pytest.raises(RunError, match="nothing to undo"):
        undo(models_dir, echo=lambda _m: None)


@pytest.mark.parametrize("state", ["failed", "running", "cancelled"])
def test_only_a_finished_run_is_shipped_unless_forced(models_dir, tmp_path, state):
    from trashure.shipping import promote

    run = fake_run(tmp_path / "runs", f"r-{state}", state, state)
    with pytest.raises(RunError, match=f"is {state}, not done"):
        promote(run, models_dir, echo=lambda _m: None)
    assert shipped_note(models_dir) == "first"
    said: list[str] = []
    promote(run, models_dir, force=True, echo=said.append)
    assert "warning" in said[0] and shipped_note(models_dir) == state


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_a_promotion_killed_part_way_leaves_the_old_release_whole(models_dir, tmp_path, monkeypatch, fail_at):
    """Each write of the new release fails in turn (as a kill would stop it): the old model, twin and card
    stay in use together, and no staging folder is left."""
    import trashure.shipping as shipping

    run = fake_run(tmp_path / "runs", "second", "done", "second")
    calls = {"n": 0}
    real = shipping.atomic_write_bytes

    def failing(path, data, *args):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(28, "No space left on device")
        return real(path, data, *args)

    monkeypatch.setattr(shipping, "atomic_write_bytes", failing)
    monkeypatch.setattr(shipping, "atomic_write_json",
                        lambda path, obj: failing(path, json.dumps(obj).encode()))
    with pytest.raises(RunError, match="cannot write the release"):
        shipping.promote(run, models_dir, echo=lambda _m: None)
    assert shipped_note(models_dir) == "first"
    assert not [p for p in (models_dir / "releases").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_cli_promote_refuses_a_failed_run_and_undo_works(models_dir, tmp_path):
    run = fake_run(tmp_path / "runs", "broken", "failed", "broken")
    base = ["promote", "--runs-dir", str(tmp_path / "runs"),
            "--models-dir", str(models_dir)]
    refused = cli(*base, run.id)
    assert refused.returncode == 2 and "is failed, not done" in refused.stderr and "Traceback" not in refused.stderr
    forced = cli(*base, run.id, "--force")
    assert forced.returncode == 0 and "warning" in forced.stdout + forced.stderr
    assert shipped_note(models_dir) == "broken"
    undone = cli(*base, "--undo")
    assert undone.returncode == 0 and shipped_note(models_dir) == "first"


@pytest.mark.slow
def test_promote_to_a_place_that_cannot_be_written_says_so_in_one_line(tmp_path):
    run = fake_run(tmp_path / "runs", "ok", "done", "ok")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("promote", run.id, "--runs-dir", tmp_path / "runs", "--models-dir", blocker / "models", timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write the release" in result.stderr and len(result.stderr.strip().splitlines()) == 1
