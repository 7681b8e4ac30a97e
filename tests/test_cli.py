"""The command line, run as a person runs it: `python -m trashure ...` in a subprocess."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, make_dataset
from trashure.config import TrainConfig


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "trashure", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from trashure.training import train

    root = tmp_path_factory.mktemp("cli")
    data = make_dataset(root / "data", per_class=10)
    run = train(data, TrainConfig(epochs=2, batch_size=8, augmented_views=1), runs_dir=root / "runs", echo=None)
    return data, run


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


def test_inspect_text_report(trained):
    result = cli("inspect", trained[0])
    assert result.returncode == 0
    assert "40 readable photos in 4 classes" in result.stdout and "64x48 (40)" in result.stdout


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


def test_bad_arguments_and_folders_exit_non_zero(trained, tmp_path):
    data, run = trained
    cases = [
        (cli("inspect", tmp_path / "missing"), "does not exist"),
        (cli("train", "--data", tmp_path / "missing", "--runs-dir", tmp_path / "runs"), "does not exist"),
        (cli("train", "--data", data, "--epochs", "0", "--runs-dir", tmp_path / "runs"), "epochs must be"),
        (cli("train", "--data", data, "--mode", "slow"), "invalid choice"),
        (cli("evaluate", "--data", data, "--model", tmp_path / "none.keras"), "does not exist"),
        (cli("predict", "--model", run.model_path, tmp_path / "nope.jpg"), "no such file"),
        (cli("train"), "required"),
    ]
    for result, words in cases:
        assert result.returncode != 0
        assert words in result.stderr, result.stderr
    empty = make_dataset(tmp_path / "one", per_class=0, classes=("a", "b"))
    result = cli("train", "--data", empty, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2 and "no photos" in result.stderr


def test_weights_check_passes():
    result = cli("weights", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")
