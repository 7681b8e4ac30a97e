"""The command line, run as a person runs it: `python -m trashure ...` in a subprocess."""

import json
import subprocess
import sys

import pytest

from conftest import CLASSES, cli, make_dataset
from trashure.config import TrainConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from trashure.training import train

    root = tmp_path_factory.mktemp("cli")
    data = make_dataset(root / "data", per_class=10)
    run = train(data, TrainConfig(epochs=2, batch_size=8, augmented_views=1), runs_dir=root / "runs", echo=None)
    return data, run


@pytest.mark.slow
def test_inspect_json(trained):
    data, _ = trained
    (data / "can" / "bad.jpg").write_text("not a photo")
    try:
        result = cli("inspect", data, "--json")
    finally:
        (data / "can" / "bad.jpg").unlink()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"] == {"can": 10, "glass_bottle": 10, "other": 10, "plastic_bottle": 10}
    assert report["unreadable"][0]["file"] == "can/bad.jpg"
    assert report["split"]["test"] == {"can": 1, "glass_bottle": 1, "other": 1, "plastic_bottle": 1}


@pytest.mark.slow
def test_inspect_text_report(trained):
    result = cli("inspect", trained[0])
    assert result.returncode == 0
    assert "40 readable photos in 4 classes" in result.stdout and "64x48 (40)" in result.stdout


@pytest.mark.slow
def test_evaluate_json_matches_the_run(trained):
    data, run = trained
    result = cli("evaluate", "--data", data, "--model", run.model_path, "--split", "test", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert {"accuracy", "loss", "classes", "confusion_matrix", "n_images"} <= set(out)
    metrics = run.metrics()
    assert out["n_images"] == metrics["n_images"] == 4
    assert out["confusion_matrix"] == metrics["confusion_matrix"]
    assert out["accuracy"] == pytest.approx(metrics["accuracy"])
    assert out["loss"] == pytest.approx(metrics["loss"], abs=1e-4)
    all_split = json.loads(cli("evaluate", "--data", data, "--model", run.model_path, "--split", "all",
                               "--json").stdout)
    assert all_split["n_images"] == 40


@pytest.mark.slow
def test_predict_json_lines(trained):
    data, run = trained
    images = [data / "can" / "can_000.jpg", data / "other" / "other_001.jpg"]
    result = cli("predict", "--model", run.model_path, *images, "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in images]
    for line in lines:
        assert line["label"] in line["probabilities"]
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert line["label"] == max(line["probabilities"], key=line["probabilities"].get)


@pytest.mark.slow
def test_bad_arguments_and_folders_exit_non_zero(trained, tmp_path):
    data, run = trained
    cases = [  # (result, exit code: 2 for our refusals and argparse's usage errors, 1 for a photo that failed)
        (cli("inspect", tmp_path / "missing"), 2, "does not exist"),
        (cli("train", "--data", tmp_path / "missing", "--runs-dir", tmp_path / "runs"), 2, "does not exist"),
        (cli("train", "--data", data, "--epochs", "0", "--runs-dir", tmp_path / "runs"), 2, "epochs must be"),
        (cli("train", "--data", data, "--mode", "slow"), 2, "invalid choice"),
        (cli("evaluate", "--data", data, "--model", tmp_path / "none.keras"), 2, "does not exist"),
        (cli("predict", "--model", run.model_path, tmp_path / "nope.jpg"), 1, "no such file"),
        (cli("train"), 2, "required"),
    ]
    for result, code, words in cases:
        assert result.returncode == code, (words, result.returncode, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr, result.stderr
    empty = make_dataset(tmp_path / "one", per_class=0, classes=("a", "b"))
    result = cli("train", "--data", empty, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2 and "no photos" in result.stderr


@pytest.mark.slow
def test_weights_check_passes():
    result = cli("weights", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")


@pytest.mark.slow
def test_train_on_two_folders_reports_each_source(tmp_path):
    a = make_dataset(tmp_path / "alpha", per_class=10)
    b = make_dataset(tmp_path / "beta", per_class=10, classes=("can", "other"))
    result = cli("train", "--data", a, "--data", b, "--epochs", "1", "--views", "1", "--fine-tune-blocks", "1",
                 "--fine-tune-epochs", "1", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "cuInit" not in result.stderr
    assert "alpha:" in result.stdout and "beta:" in result.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["per_source"]) == {"alpha", "beta"}
    assert metrics["per_source"]["beta"]["n_images"] == 2 and metrics["split_sizes"]["test"] == 6
    config = json.loads((run_dir / "config.json").read_text())
    assert [p.rsplit("/", 1)[-1] for p in config["data_dirs"]] == ["alpha", "beta"]
    assert config["fine_tune_blocks"] == 1
    card = json.loads((run_dir / "model_card.json").read_text())
    assert card["data"]["folders"] == ["alpha", "beta"] and "fine_tune_kept" in card["training"]
    stages = [line.split(",")[0] for line in (run_dir / "history.csv").read_text().splitlines()[1:]]
    assert stages == ["frozen", "fine-tune"]


def test_exact_mode_is_the_reference_recipe_unless_told_otherwise():
    exact = TrainConfig.for_mode("exact")
    assert (exact.paste_probability, exact.photo_noise, exact.class_weighting, exact.fine_tune_blocks,
            exact.validation_views) == (0.0, False, "none", 0, 0)
    assert (exact.learning_rate, exact.epochs, exact.patience, exact.batch_size) == (1e-4, 20, 3, 32)
    assert TrainConfig().batch_size != exact.batch_size  # Trashure's recipe trains in smaller batches
    assert TrainConfig.for_mode("exact", fine_tune_blocks=2).fine_tunes
    # A config saved before these options existed reads as trained without them.
    assert TrainConfig.from_dict({"mode": "fast", "epochs": 5}).fine_tune_blocks == 0


def test_a_wrong_data_folder_is_refused_before_tensorflow_loads_and_leaves_no_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    result = cli("train", "--data", str(tmp_path / "typo"), "--runs-dir", str(runs))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not runs.exists() or not list(runs.iterdir())  # no failed run left in the list
    from trashure import cli as cli_module

    def no_tensorflow():
        raise AssertionError("TensorFlow was loaded before the data folder was checked")

    monkeypatch.setattr(cli_module, "_import_tensorflow_quietly", no_tensorflow)
    assert cli_module.main(["train", "--data", str(tmp_path / "typo"), "--runs-dir", str(runs)]) == 2
    out = tmp_path / "a-file"
    out.write_text("x")
    result = cli("export", "--out", str(out), "--formats", "keras")
    assert result.returncode == 2 and "is a file" in result.stderr


def test_ctrl_c_during_training_is_recorded_as_cancelled(tiny_dataset, tmp_path, monkeypatch):
    import trashure.training.run as run_module
    from trashure.config import TrainConfig
    from trashure.runs import list_runs

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_train_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_module.train(tiny_dataset, TrainConfig(epochs=1), runs_dir=tmp_path / "runs", echo=None)
    (run,) = list_runs(tmp_path / "runs")
    assert run.state == "cancelled" and "Ctrl-C" in run.status()["message"]


@pytest.mark.parametrize("command", ["inspect", "train", "evaluate", "predict", "predict-model"])
def test_a_name_longer_than_the_file_system_allows_gives_one_clear_line(tmp_path, command):
    long = tmp_path / ("x" * 300)
    args = {"inspect": ["inspect", long], "train": ["train", "--data", long, "--runs-dir", tmp_path / "runs"],
            "evaluate": ["evaluate", "--data", long], "predict": ["predict", f"{long}.jpg"],
            "predict-model": ["predict", "--model", f"{long}.keras", "x.jpg"]}[command]
    result = cli(*args)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ("File name too long" in lines[0]), lines
    assert "damaged" not in lines[0] and not (tmp_path / "runs").exists()
    assert lines[0].count(str(tmp_path)) == 1  # the path is said once


def test_inspect_says_a_one_class_folder_cannot_train(tmp_path):
    root = make_dataset(tmp_path / "cans", per_class=12, classes=("can",))
    result = cli("inspect", root)
    assert result.returncode == 0
    assert "Training: not possible: training needs at least two classes" in result.stdout
    report = json.loads(cli("inspect", root, "--json").stdout)
    assert "two classes" in report["training_error"] and report["split"] is not None


def test_the_installed_command_works_outside_the_repository(tmp_path):
    """`make venv` installs the project (pip install -e .): `trashure` and `python -m trashure` run anywhere."""
    from pathlib import Path

    command = Path(sys.executable).parent / "trashure"
    assert command.is_file(), "the console script is missing: run `pip install -e .` (make venv does)"
    for argv in ([str(command)], [sys.executable, "-m", "trashure"]):
        result = subprocess.run([*argv, "runs", "--runs-dir", str(tmp_path / "none")], capture_output=True,
                                text=True, cwd=tmp_path, timeout=120)
        assert result.returncode == 0 and "no runs in" in result.stdout, result.stderr


@pytest.mark.slow
def test_runs_and_export_of_a_run_exit_0(trained, tmp_path):
    data, run = trained
    listed = cli("runs", "--runs-dir", run.dir.parent)
    assert listed.returncode == 0 and run.id in listed.stdout and "done" in listed.stdout
    exported = cli("export", "--run", run.id, "--runs-dir", run.dir.parent, "--out", tmp_path / "out",
                   "--formats", "keras,tflite")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (tmp_path / "out" / "tflite" / "model.tflite").is_file()
    assert json.loads((tmp_path / "out" / "keras" / "metadata.json").read_text())["source"]["run_id"] == run.id


def test_inspect_reports_exact_duplicates_conflicts_and_leakage(tmp_path):
    import shutil

    root = make_dataset(tmp_path / "data", per_class=20)
    shutil.copy(root / "can" / "can_003.jpg", root / "other" / "dup_of_can_003.jpg")
    report = json.loads(cli("inspect", root, "--json").stdout)
    exact = report["exact_duplicates"]
    (group,) = exact["groups"]
    assert sorted(group["files"]) == ["data/can/can_003.jpg", "data/other/dup_of_can_003.jpg"]
    assert group["conflict"] and exact["conflicts"] == 1 and exact["n_photos"] == 2
    assert len(group["parts_leakage_safe"]) == 1  # the split training makes keeps the pair together
    near = report["near_duplicates"]
    assert near["spread_leakage_safe"] == 0 and near["spread_plain"] >= 0
    assert any(sorted(g["files"]) == sorted(group["files"]) or set(group["files"]) <= set(g["files"])
               for g in near["groups"])  # every exact duplicate is a near-duplicate too
    text = cli("inspect", root).stdout
    assert "Exact duplicates: 1 groups of 2 photos (1 with different labels" in text
    assert "Near-duplicates (perceptual hashes <= 6 bits apart" in text


def test_predict_takes_folders_and_writes_a_csv(tmp_path):
    import csv

    root = make_dataset(tmp_path / "photos", per_class=2)
    (root / "can" / "notes.txt").write_text("not a photo")  # not a photo type: not listed
    result = cli("predict", root, "--csv", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and all(r["label"] in CLASSES for r in rows)
    assert {r["file"].split("/")[-2] for r in rows} == set(CLASSES)
    assert abs(sum(float(rows[0][f"p_{c}"]) for c in CLASSES) - 1) < 1e-3
