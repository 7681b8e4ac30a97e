"""Every dashboard page through Streamlit's AppTest: renders, shows its key elements, and works."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, encoded, make_dataset, photo
from trashure.config import DEFAULT_MODEL_PATH

APP = str(REPO / "app.py")


@pytest.fixture
def studio(tmp_path, monkeypatch):
    """A clean studio state: runs and settings in a temp folder, no data folder unless a test sets one."""
    monkeypatch.setenv("TRASHURE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("TRASHURE_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("TRASHURE_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.delenv("TRASHURE_MODEL", raising=False)
    return tmp_path


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [e.value for e in at.error] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def test_home_without_data_shows_model_and_guidance(studio):
    at = open_page()
    assert at.title[0].value.startswith("♻️ Trashure")
    labels = [m.label for m in at.metric]
    assert "Test accuracy" in labels
    assert "No data folder yet" in texts(at)
    from trashure.catalog import display_name

    assert display_name(DEFAULT_MODEL_PATH) in texts(at)  # the active model, by its one name


@pytest.mark.parametrize("page", ["pages/dataset.py", "pages/train.py", "pages/results.py", "pages/classify.py",
                                  "pages/export.py"])
def test_every_page_renders_without_a_data_folder(studio, page):
    at = open_page(page)
    assert not at.error or page == "pages/dataset.py"


def test_dataset_page_with_photos(studio, monkeypatch):
    data = make_dataset(studio / "data", per_class=10)
    (data / "can" / "broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    at = open_page("pages/dataset.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Readable photos"] == "40" and metrics["Unreadable files"] == "1"
    assert len(at.get("plotly_chart")) == 1  # class counts; one image size is a sentence, not a chart
    assert "every photo is 64×48 pixels" in texts(at)
    assert any("broken.jpg" in str(df.value) for df in at.dataframe)
    assert len(at.get("image")) >= 4  # sample grid
    reshuffle = next(b for b in at.button if "Reshuffle" in b.label)
    reshuffle.click().run()
    assert not at.exception


def test_dataset_page_lists_near_duplicates_and_what_the_split_does_with_them(studio, monkeypatch):
    from PIL import Image

    data = make_dataset(studio / "data", per_class=10)
    Image.open(data / "can" / "can_004.jpg").resize((60, 45)).save(data / "other" / "copy_of_can_004.jpg", quality=80)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    at = open_page("pages/dataset.py")
    warning = next(w.value for w in at.warning if "near-duplicates" in w.value)
    assert "(1 with different labels" in warning and "training keeps each group in one part" in warning
    table = next(df.value for df in at.dataframe if "leakage-safe split" in df.value.columns)
    (row,) = [r for _, r in table.iterrows() if "copy_of_can_004.jpg" in r["files"]]
    assert row["label conflict"] and "," not in row["leakage-safe split"]  # one part


def test_classify_page_camera_and_upload(studio):
    at = open_page("pages/classify.py")
    at.camera_input[0].set_value(("shot.jpg", jpeg((200, 40, 40)), "image/jpeg")).run()
    assert not at.exception
    prediction = next(m for m in at.metric if m.label == "Prediction")
    assert prediction.value in ("can", "glass_bottle", "other", "plastic_bottle")
    assert len(at.get("plotly_chart")) == 1
    assert "Prediction took" in texts(at)
    # The heat map only when asked for.
    assert not [i for i in at.get("image") if "evidence" in str(i.proto)]
    at.toggle(key="classify_why").set_value(True).run()
    assert not at.exception
    assert any("Where the evidence for" in str(i.proto) for i in at.get("image"))


def jpeg(colour, size=(320, 240), seed=0) -> bytes:
    return encoded(photo(colour, size, seed))


def verdict(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric if m.label in ("Prediction", "Confidence")}


def test_classify_page_shows_the_input_given_last(studio, monkeypatch):
    from trashure.prediction import Classifier

    st_cache_clear()
    seen: list[bytes] = []
    original = Classifier.predict
    monkeypatch.setattr(Classifier, "predict", lambda self, src: seen.append(src) or original(self, src))
    at = open_page("pages/classify.py")
    shot, upload = jpeg((200, 40, 40), seed=1), jpeg((40, 40, 200), seed=2)
    at.camera_input[0].set_value(("shot.jpg", shot, "image/jpeg")).run()
    assert "Classifying your camera photo" in texts(at) and seen[-1] == shot
    at.file_uploader[0].set_value(("blue.jpg", upload, "image/jpeg")).run()
    assert not at.exception
    assert "Classifying your upload `blue.jpg`" in texts(at) and seen[-1] == upload
    assert "camera photo" not in texts(at)
    # Moving the threshold redraws the same verdict without running the model again.
    calls = len(seen)
    before = verdict(at)
    at.slider[0].set_value(95).run()
    assert len(seen) == calls and verdict(at) == before
    # A bad upload after a good camera photo shows the upload's error, not the old verdict.
    at.file_uploader[0].set_value(("notes.jpg", b"this is text", "image/jpeg")).run()
    assert "cannot be classified" in texts(at) and not verdict(at)


def test_classify_page_sample_gallery(studio, monkeypatch):
    data = make_dataset(studio / "data", per_class=10)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    st_cache_clear()
    at = open_page("pages/classify.py")
    buttons = [b for b in at.button if b.label == "Classify"]
    # 10 photos a class split 8/1/1: the test photo, then the validation photo, of each class
    assert len(buttons) == 8
    assert buttons[2].key.endswith(tuple(f"glass_bottle_{i:03d}.jpg" for i in range(10)))
    buttons[2].click().run()
    assert not at.exception
    assert "Classifying sample photo `glass_bottle/" in texts(at)
    assert set(verdict(at)) == {"Prediction", "Confidence"}


def shipped_data_present() -> bool:
    from trashure.catalog import model_entries

    return all(d.is_dir() for d in model_entries()[0].data_dirs())


def st_cache_clear() -> None:
    import streamlit as st

    st.cache_data.clear()


def test_classify_page_rejects_a_non_image_upload(studio):
    at = open_page("pages/classify.py")
    at.file_uploader[0].set_value(("notes.png", b"this is text", "image/png")).run()
    assert not at.exception
    assert "cannot be classified" in texts(at)
    assert not [m for m in at.metric if m.label == "Prediction"]


def test_a_second_start_while_a_run_is_going_on_is_refused(studio, monkeypatch):
    """A run that is running (its process alive: this one) blocks Start with a message; no second run."""
    import os

    from trashure.runs import create_run, list_runs

    data = make_dataset(studio / "data", per_class=10)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    going = create_run({"mode": "fast", "epochs": 2}, [data], studio / "runs")
    going.update_status(state="running", pid=os.getpid())
    at = open_page("pages/train.py")
    next(b for b in at.button if "Start training" in b.label).click().run()
    assert "is going on" in texts(at)
    assert [r.id for r in list_runs(studio / "runs")] == [going.id]


def recorded_starts(studio, monkeypatch) -> list:
    """A data folder for the Train page, and its Start button wired to record the config it would launch
    (starting nothing): the list it appends to."""
    from trashure import launcher
    from trashure.errors import TrashureError

    data = make_dataset(studio / "data", per_class=10)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    started = []

    def start_run(config, data_dirs):
        started.append(config)
        raise TrashureError("not started in this test")

    monkeypatch.setattr(launcher, "start_run", start_run)
    return started


def test_train_form_sends_each_widget_to_its_config_field(studio, monkeypatch):
    """The Train form's four columns build one TrainConfig: untouched, the recipe's defaults; a value changed
    in each column lands in its own field."""
    from trashure.config import TrainConfig

    started = recorded_starts(studio, monkeypatch)
    at = open_page("pages/train.py")
    next(b for b in at.button if "Start training" in b.label).click().run()
    assert started[-1] == TrainConfig()
    number = {n.label: n for n in at.number_input}
    number["Max epochs"].set_value(7)
    number["Batch size"].set_value(24)
    next(s for s in at.slider if s.label.startswith("Grey views")).set_value(0.5)
    next(s for s in at.slider if "photographed surfaces" in s.label).set_value(0.3)
    number["Fine-tune: patience"].set_value(2)
    next(c for c in at.checkbox if c.label == "Look twice: mirrored too").uncheck()
    next(s for s in at.selectbox if s.label == "Class weights").select("none")
    next(b for b in at.button if "Start training" in b.label).click().run()
    assert not at.exception
    assert started[-1] == TrainConfig(epochs=7, batch_size=24, grayscale_probability=0.5, texture_probability=0.3,
                                      fine_tune_patience=2, glimpse_mirror=False, class_weighting="none")


def test_results_page_shows_the_shipped_model(studio):
    at = open_page("pages/results.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"].endswith("%")
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Confusion matrix" in spec for spec in specs), "confusion matrix expected"
    assert "(shipped · " in texts(at) and "is the active model" in texts(at)


def test_choosing_exact_on_the_train_page_starts_the_notebook_recipe(studio, monkeypatch):
    """Exact mode is the notebook verbatim: choosing it shows the notebook's settings in the form (no pastes,
    no fine-tuning, one look, no class weights, batch 32), and Start sends exactly that recipe."""
    from trashure.config import TrainConfig

    started = recorded_starts(studio, monkeypatch)
    at = open_page("pages/train.py")
    next(r for r in at.radio if r.label == "Mode").set_value("exact").run()
    number = {n.label: n.value for n in at.number_input}
    assert number["Fine-tune: top blocks to unfreeze (0: off)"] == 0
    assert number["Look twice: close-up width (0: off)"] == 0
    assert number["Batch size"] == TrainConfig.for_mode("exact").batch_size
    assert next(s for s in at.slider if s.label.startswith("Paste plain-board")).value == 0
    assert next(s for s in at.selectbox if s.label == "Class weights").value == "none"
    next(b for b in at.button if "Start training" in b.label).click().run()
    assert not at.exception
    assert started[-1] == TrainConfig.for_mode("exact")
    assert started[-1] != TrainConfig(mode="exact")  # not Trashure's recipe trained the exact way


@pytest.mark.slow
def test_start_on_train_page_runs_a_real_training_and_it_shows_on_results(studio, monkeypatch):
    data = make_dataset(studio / "data", per_class=10)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    at = open_page("pages/train.py")
    number = {n.label: n for n in at.number_input}
    number["Max epochs"].set_value(2)
    number["Augmented views per photo (fast mode)"].set_value(1)
    next(s for s in at.selectbox if s.label.startswith("Devices")).select("mirrored")  # one replica here
    next(b for b in at.button if "Start training" in b.label).click().run()
    assert not at.exception

    from trashure.runs import list_runs

    (run,) = list_runs(studio / "runs")
    assert run.config()["epochs"] == 2 and run.config()["strategy"] == "mirrored"
    assert run.config()["augmented_views"] == 1
    assert any("strategy mirrored" in c.value for c in at.caption)  # the page says where it trains

    deadline = time.time() + 300
    while run.state in ("queued", "running") and time.time() < deadline:
        time.sleep(1)
    assert run.state == "done", (run.status(), run.log_path().read_text()[-3000:])
    assert run.has_model

    at = open_page("pages/results.py")
    labels = [o for o in at.selectbox[0].options]
    assert any(run.id in o for o in labels)
    at.selectbox[0].select_index(next(i for i, o in enumerate(labels) if run.id in o)).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test photos"] == "4"
    use = next(b for b in at.button if "Use this model" in b.label)
    use.click().run()
    from trashure import settings

    assert settings.active_model_path().resolve() == run.model_path.resolve()
    # The replaced model can be restored in one click.
    at = open_page("pages/results.py")
    at.selectbox[0].select_index(next(i for i, o in enumerate(at.selectbox[0].options) if run.id in o)).run()
    back = next(b for b in at.button if "Back to the previous model (shipped · " in b.label)
    back.click().run()
    assert not at.exception
    assert settings.active_model_path() == DEFAULT_MODEL_PATH


@pytest.mark.slow
def populated_studio(runs_dir: Path, data_dirs: list[Path]) -> tuple[str, str]:
    """A done run (the shipped model's files, predictions with mistakes) and a running run (this process)."""
    import json
    import shutil

    from trashure.runs import create_run

    card = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    done = create_run({"mode": "fast", "epochs": 20}, data_dirs, runs_dir, run_id="20260101-000000-fast-done")
    shutil.copy(DEFAULT_MODEL_PATH, done.model_path)
    shutil.copy(DEFAULT_MODEL_PATH.with_name("mobilenetv2_trashure.predictions.csv"), done.dir / "predictions.csv")
    (done.dir / "model_card.json").write_text(json.dumps(card))
    m = card["metrics"]
    (done.dir / "metrics.json").write_text(json.dumps({
        "accuracy": m["test_accuracy"], "loss": m["test_loss"], "n_images": m["test_images"],
        "confusion_matrix": m["confusion_matrix"], "classes": card["classes"], "per_class": m["per_class"],
        "per_source": m["per_source"], "epochs_run": 20, "timings": {"total_s": 300}}))
    history = card["history"]
    (done.dir / "history.csv").write_text(",".join(history[0]) + "\n" + "".join(
        ",".join(str(h[k]) for k in history[0]) + "\n" for h in history))
    done.update_status(state="done")
    running = create_run({"mode": "fast", "epochs": 20}, data_dirs, runs_dir, run_id="20260102-000000-fast-live")
    running.update_status(state="running", pid=os.getpid(), phase="features", phase_progress=0.4,
                          started_at_unix=1.0, phase_started_unix=1.0)
    return done.id, running.id


@pytest.mark.slow
def test_light_pages_do_not_import_tensorflow(studio, shipped_data):
    """Home, Dataset, Train and Results stay fast, populated: the real photos, a done run with its mistakes
    gallery, a running run; select, toggle, reshuffle. No TensorFlow import (a fresh interpreter)."""
    import subprocess
    import sys

    done, running = populated_studio(studio / "runs", shipped_data)
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=120).run()\n"
        "at.switch_page('pages/dataset.py').run()\n"
        "assert at.get('image'), 'the sample grid'\n"
        "next(b for b in at.button if 'Reshuffle' in b.label).click().run()\n"
        "at.switch_page('pages/train.py').run()\n"
        "assert any('live' in m.value for m in at.markdown), 'the running run'\n"
        "at.switch_page('pages/results.py').run()\n"
        f"at.selectbox[0].select_index(at.selectbox[0].options.index({done!r})).run()\n"
        "at.toggle[0].set_value(True).run()\n"
        "assert any('Misclassified' in s.value for s in at.subheader), 'the mistakes gallery'\n"
        f"at.selectbox[0].select_index([i for i, o in enumerate(at.selectbox[0].options) if {running!r} in o][0]).run()\n"
        "assert not at.exception, at.exception\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    env = {**os.environ, "TRASHURE_DATA": os.pathsep.join(map(str, shipped_data))}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.slow
def test_export_page_exports_and_offers_downloads(studio, monkeypatch):
    data = make_dataset(studio / "data", per_class=10)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    at = open_page("pages/export.py")
    at.multiselect[0].set_value(["keras", "tflite"])
    next(b for b in at.button if "Export" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Format"]) == ["keras", "tflite"]
    assert (table["Size (MB)"].astype(float) > 5).all()
    assert not table.isin(["None", "nan"]).any().any() and not table.isna().any().any()
    assert len(at.get("download_button")) == 2
    from trashure.catalog import display_name

    folder = display_name(DEFAULT_MODEL_PATH).replace(" · ", "-")
    assert (studio / "exports" / folder / "tflite" / "model.tflite").is_file()
    if shipped_data_present():  # each format scored on the shipped model's test part
        accuracy = table.set_index("Format")["Test accuracy"].str.rstrip("%").astype(float)
        assert abs(accuracy["tflite"] - accuracy["keras"]) < 0.5 and accuracy["keras"] > 80
        assert table.set_index("Format").loc["tflite", "Same top-1 as Keras"] != "–"


def test_read_only_presenter_mode_refuses_every_change_and_keeps_the_demo(studio, monkeypatch):
    data = make_dataset(studio / "data", per_class=10)
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    monkeypatch.setenv("TRASHURE_READ_ONLY", "1")
    dataset = open_page("pages/dataset.py")
    assert not [b for b in dataset.button if "Use these folders" in b.label] and not dataset.text_input
    assert {m.label: m.value for m in dataset.metric}["Readable photos"] == "40"
    train = open_page("pages/train.py")
    assert not [b for b in train.button if "Start training" in b.label] and "read-only" in texts(train).lower()
    results = open_page("pages/results.py")
    assert not [b for b in results.button if "Use this model" in b.label or "Back to" in b.label]
    assert results.get("plotly_chart")
    export = open_page("pages/export.py")
    assert not [b for b in export.button if "Export" in b.label] and "read-only" in texts(export).lower()
    classify = open_page("pages/classify.py")
    classify.camera_input[0].set_value(("shot.jpg", jpeg((200, 40, 40)), "image/jpeg")).run()
    assert set(verdict(classify)) == {"Prediction", "Confidence"}
    # The package refuses too, whatever a page does.
    from trashure import settings
    from trashure.access import AccessError
    from trashure.config import TrainConfig
    from trashure.launcher import start_run

    with pytest.raises(AccessError, match="read-only"):
        settings.set_active_model(None)
    with pytest.raises(AccessError, match="read-only"):
        settings.set_active_data_dirs([data])
    with pytest.raises(AccessError, match="read-only"):
        start_run(TrainConfig(epochs=1), [data], studio / "runs")
    assert not (studio / "runs").exists() or not list((studio / "runs").glob("2*"))


def test_folders_outside_the_data_roots_are_refused(studio, monkeypatch):
    allowed_root = studio / "photos"
    inside = make_dataset(allowed_root / "mine", per_class=10)
    outside = make_dataset(studio / "elsewhere", per_class=10)
    (allowed_root / "sneaky").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("TRASHURE_DATA_ROOTS", str(allowed_root))
    monkeypatch.setenv("TRASHURE_DATA", str(inside))
    at = open_page("pages/dataset.py")
    for bad in (outside, allowed_root / "sneaky", allowed_root / ".." / "elsewhere"):
        at.text_input[0].set_value(str(bad))
        next(b for b in at.button if "Use these folders" in b.label).click().run()
        assert any("outside the data folders this dashboard may read" in e.value for e in at.error), bad
    from trashure.access import AccessError
    from trashure.config import TrainConfig
    from trashure.launcher import start_run

    with pytest.raises(AccessError, match="outside the data folders"):
        start_run(TrainConfig(epochs=1), [outside], studio / "runs")
    monkeypatch.setenv("TRASHURE_DATA", str(outside))  # even the environment cannot point outside
    from trashure import settings

    assert settings.active_data_dirs() == []


def test_explore_page_maps_the_photos_and_reports_duplicates_and_suspects(studio, monkeypatch):
    import shutil

    data = make_dataset(studio / "data", per_class=12)
    shutil.copy(data / "can" / "can_000.jpg", data / "can" / "copy_of_can_000.jpg")  # an exact duplicate
    shutil.copy(data / "can" / "can_001.jpg", data / "other" / "can_001_as_other.jpg")  # a label conflict
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    at = open_page("pages/explore.py")
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("50 photos, PCA" in spec for spec in specs)
    at.radio[1].set_value("split").run()
    assert not at.exception
    subheaders = [s.value for s in at.subheader]
    assert "Exact duplicates (same bytes): 2 groups" in subheaders
    duplicates = at.dataframe[0].value
    assert duplicates["label conflict"].tolist().count(True) == 1
    assert any("suspect" in b.label.lower() for b in at.get("download_button"))


def test_several_uploads_are_classified_as_a_batch_with_a_csv(studio):
    at = open_page("pages/classify.py")
    at.file_uploader[0].set_value([("red.jpg", jpeg((200, 40, 40), seed=1), "image/jpeg"),
                                   ("blue.jpg", jpeg((40, 40, 200), seed=2), "image/jpeg"),
                                   ("notes.jpg", b"not a photo", "image/jpeg")]).run()
    assert not at.exception
    assert "Classifying 3 uploads" in texts(at)
    table = at.dataframe[0].value
    assert list(table["photo"]) == ["red.jpg", "blue.jpg", "notes.jpg"]
    assert table["error"].tolist()[2] and not table["error"].tolist()[0]
    assert any("CSV" in b.label for b in at.get("download_button"))


def test_a_photo_saved_under_a_corrected_class_is_found_on_the_dataset_page(studio, monkeypatch):
    import csv

    collection = studio / "collected"
    monkeypatch.setenv("TRASHURE_COLLECT", str(collection))
    at = open_page("pages/classify.py")
    at.camera_input[0].set_value(("shot.jpg", jpeg((200, 40, 40)), "image/jpeg")).run()
    predicted = verdict(at)["Prediction"]
    corrected = next(c for c in ("can", "glass_bottle", "other", "plastic_bottle") if c != predicted)
    at.selectbox(key="collect_class").set_value(corrected).run()
    at.button(key="collect_save").click().run()
    assert not at.exception and any("Saved as" in s.value for s in at.success)
    (saved,) = (collection / corrected).iterdir()
    with open(collection / "manifest.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["file"] == f"{corrected}/{saved.name}" and row["source"] == "camera"
    assert row["predicted"] == predicted and row["model"].startswith("shipped · ")
    dataset = open_page("pages/dataset.py")
    assert f"collected  ·  {collection}" in dataset.multiselect[0].options
