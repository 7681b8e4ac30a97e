import csv
import json

import numpy as np
import pytest

from trashure.config import TrainConfig
from trashure.errors import DatasetError
from trashure.runs import get_run, list_runs
from trashure.training import prepare_data, train

RUN_FILES = {"config.json", "status.json", "history.csv", "metrics.json", "model_card.json",
             "predictions.csv", "mobilenetv2_trashure.keras", "mobilenetv2_trashure.tflite"}

pytestmark = [pytest.mark.slow]


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_short_real_training_run(tiny_dataset, tmp_path, mode):
    lines = []
    config = TrainConfig(mode=mode, epochs=2, batch_size=8, augmented_views=1, seed=3, fine_tune_blocks=1,
                         fine_tune_epochs=1)
    run = train(tiny_dataset, config, runs_dir=tmp_path / "runs", echo=lines.append)

    assert RUN_FILES <= {p.name for p in run.dir.iterdir()}
    assert not [p for p in run.dir.iterdir() if "partial" in p.name or p.name.endswith(".tmp")]
    status = run.status()
    assert status["state"] == "done" and status["epoch"] == 3 and status["finished_at_unix"] >= status["started_at_unix"]
    with open(run.dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [int(h["epoch"]) for h in history] == [1, 2, 3]
    assert [h["stage"] for h in history] == ["frozen", "frozen", "fine-tune"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(history[0])
    assert sum(1 for line in lines if line.startswith("epoch ")) == 3  # per-epoch progress on the terminal

    metrics = json.loads((run.dir / "metrics.json").read_text())
    # 80/10/10 of 40 photos, give or take the near-duplicate pairs the leakage-safe split keeps together.
    sizes = metrics["split_sizes"]
    assert sizes == prepare_data(tiny_dataset, config).split.sizes() and sum(sizes.values()) == 40
    assert abs(sizes["val"] - 4) <= 1 and abs(sizes["test"] - 4) <= 1
    n_test = sizes["test"]
    assert metrics["classes"] == ["can", "glass_bottle", "other", "plastic_bottle"]
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == n_test
    assert abs(metrics["accuracy"] - np.trace(cm) / n_test) < 1e-9
    assert set(metrics["per_class"]["can"]) == {"precision", "recall", "f1", "support"}
    assert {"data_s", "train_s", "eval_s", "total_s"} <= set(metrics["timings"])
    assert json.loads((run.dir / "config.json").read_text())["mode"] == mode

    # The saved model is a complete, loadable model with the same predictions as recorded.
    from trashure.prediction import Classifier

    from trashure.prediction import tflite_for
    from trashure.weights import sha256_file

    # The TFLite twin exists as soon as the run is done, bound to this model file: the app's first
    # classification with it needs no conversion.
    card = json.loads((run.dir / "model_card.json").read_text())
    assert card["tflite"]["source_sha256"] == sha256_file(run.model_path)
    assert tflite_for(run.model_path) == run.model_path.with_suffix(".tflite")

    clf = Classifier(run.model_path)
    rows = run.predictions()
    assert len(rows) == n_test
    for row in rows:
        p = clf.predict(tiny_dataset / row["file"])
        assert p.label == row["predicted"]
        assert abs(p.confidence - float(row["confidence"])) < 1e-4
    assert [r.id for r in list_runs(tmp_path / "runs")] == [run.id]
    assert get_run(run.id, tmp_path / "runs").metrics()["accuracy"] == metrics["accuracy"]


def test_cancel_before_training_is_recorded(tiny_dataset, tmp_path):
    from trashure.runs import create_run

    config = TrainConfig(epochs=2)
    run = create_run(config.to_dict(), tiny_dataset, tmp_path / "runs")
    run.request_cancel()
    train(tiny_dataset, config, run=run, echo=None)
    assert run.status()["state"] == "cancelled"
    assert not run.model_path.exists()


def test_failed_run_records_the_error(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "b").mkdir()
    with pytest.raises(DatasetError, match="no photos"):
        train(tmp_path / "data", TrainConfig(epochs=1), runs_dir=tmp_path / "runs", echo=None)
    (run,) = list_runs(tmp_path / "runs")
    assert run.status()["state"] == "failed" and "no photos" in run.status()["error"]


def test_prepare_data_splits_images_and_labels_together(tiny_dataset):
    data = prepare_data(tiny_dataset, TrainConfig())
    for part in ("train", "val", "test"):
        assert len(data.images[part]) == len(data.labels[part]) == len(data.split.part(part))
    # Rows line up: each image's dominant colour is its class colour.
    red = data.images["train"][data.labels["train"] == 0][..., 0].mean()
    blue = data.images["train"][data.labels["train"] == 3][..., 0].mean()
    assert red > blue


class _Captured(Exception):
    pass


def test_exact_mode_trains_with_the_notebooks_hyperparameters(tiny_dataset, monkeypatch):
    """Adam(1e-4), categorical cross-entropy, accuracy; at most 20 epochs; EarlyStopping on val_loss with
    patience 3 and the best weights restored; the checkpoint on val_accuracy; every base layer frozen;
    batches of 32 photos, each through flip/rotation/brightness."""
    import keras

    from trashure.training.run import fit

    seen = {}

    def capture(self, x=None, validation_data=None, epochs=None, callbacks=(), **kwargs):
        seen.update(model=self, x=x, epochs=epochs, callbacks=list(callbacks))
        raise _Captured

    monkeypatch.setattr(keras.Model, "fit", capture)
    config = TrainConfig.for_mode("exact")
    data = prepare_data(tiny_dataset, config)
    with pytest.raises(_Captured):
        fit(data, config, echo=lambda _m: None)
    trainer = seen["model"]
    assert isinstance(trainer.optimizer, keras.optimizers.Adam)
    assert float(trainer.optimizer.learning_rate) == pytest.approx(1e-4)
    assert trainer.loss == "categorical_crossentropy"
    assert seen["epochs"] == 20
    stopper = next(c for c in seen["callbacks"] if isinstance(c, keras.callbacks.EarlyStopping))
    assert (stopper.monitor, stopper.patience, stopper.restore_best_weights) == ("val_loss", 3, True)
    assert any(type(c).__name__ == "ValAccuracyCheckpoint" for c in seen["callbacks"])
    base = trainer.get_layer("trashure_mobilenetv2").get_layer("mobilenetv2_1.00_224")
    assert not any(layer.trainable_weights for layer in base.layers)
    assert [type(layer).__name__ for layer in trainer.get_layer("augmentation").layers] == [
        "RandomFlip", "RandomRotation", "RandomBrightness"]
    images, _labels = seen["x"][0]
    assert images.shape[0] == 32  # the recipe's batch size


def test_a_fast_run_is_deterministic(tmp_path, shared_data, monkeypatch):
    """Same seed twice on a small real subset, each computing its own views: identical history, metrics
    and weights."""
    import shutil

    from trashure.prediction import load_keras_model

    small = tmp_path / "small"
    for name in ("can", "glass_bottle", "other", "plastic_bottle"):
        (small / name).mkdir(parents=True)
        for photo_path in sorted((shared_data / name).glob("*.jpg"))[:12]:
            shutil.copy(photo_path, small / name / photo_path.name)
    config = TrainConfig(epochs=2, augmented_views=1, fine_tune_blocks=1, fine_tune_epochs=1, seed=7)
    runs = []
    for i in range(2):
        monkeypatch.setenv("TRASHURE_CACHE", str(tmp_path / f"cache{i}"))  # no view cache shared
        runs.append(train(small, config, runs_dir=tmp_path / f"runs{i}", echo=None))
    histories = [[{k: v for k, v in h.items() if k != "seconds"} for h in r.history()] for r in runs]
    assert histories[0] == histories[1] and len(histories[0]) == 3
    metrics = [r.metrics() for r in runs]
    for key in ("accuracy", "loss", "confusion_matrix", "per_class"):
        assert metrics[0][key] == metrics[1][key]
    weights = [load_keras_model(r.model_path).get_weights() for r in runs]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def test_a_second_fast_run_with_other_head_settings_reuses_the_cached_views(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("TRASHURE_CACHE", str(tmp_path / "cache"))
    # One look: a model that looks twice decodes its test photos again at 448x448 to evaluate the second look,
    # which no cache of the 224x224 views can serve; this test is about the views.
    base = dict(epochs=2, batch_size=8, augmented_views=1, seed=3, fine_tune_blocks=1, fine_tune_epochs=1,
                glimpse_side=0.0)
    said: list[list[str]] = [[], [], [], []]
    train(tiny_dataset, TrainConfig(**base), runs_dir=tmp_path / "r", echo=said[0].append)
    with monkeypatch.context() as patched:  # every view is cached: not one photo is decoded
        patched.setattr("trashure.data.decode_records",
                        lambda *a, **k: pytest.fail("a photo was decoded though every view is cached"))
        train(tiny_dataset, TrainConfig(**{**base, "learning_rate": 3e-4, "epochs": 3}), runs_dir=tmp_path / "r",
              echo=said[1].append)
    train(tiny_dataset, TrainConfig(**{**base, "augmented_views": 2}), runs_dir=tmp_path / "r", echo=said[2].append)
    reused = ["reusing them" in " ".join(lines) for lines in said[:3]]
    assert reused == [False, True, False]  # other views: computed again
    for entry in (tmp_path / "cache" / "views").glob("*.npz"):
        entry.write_bytes(entry.read_bytes()[:100])  # truncated: recomputed, not trusted
    run = train(tiny_dataset, TrainConfig(**base), runs_dir=tmp_path / "r", echo=said[3].append)
    assert "reusing them" not in " ".join(said[3]) and run.state == "done"


def test_a_fine_tuning_epoch_shows_every_photo_once_through_one_of_its_views():
    """Fast fine-tuning on cached views keeps the exact mode's schedule: an epoch is one view of each
    photo (drawn afresh every epoch), not every view of every photo."""
    from trashure.training.keras_loop import ArrayBatches

    n, views = 50, 5
    rows = np.arange(views * n)  # row v * n + i is view v of photo i
    batches = ArrayBatches(rows, rows % n, batch_size=8, seed=0, photos=n)
    drawn_views = []
    for _ in range(6):
        assert len(batches) == 7  # ceil(50 / 8), where all 250 rows would be 32 batches
        shown = np.concatenate([batches[i][0] for i in range(len(batches))]).astype(int)
        assert sorted(shown % n) == list(range(n))  # every photo exactly once
        assert all((batches[i][1] == batches[i][0] % n).all() for i in range(len(batches)))  # labels follow rows
        drawn_views.append(shown // n)
        batches.on_epoch_end()
    assert set(np.concatenate(drawn_views)) == set(range(views))  # over epochs, every view gets its turn
    assert not all((a == drawn_views[0]).all() for a in drawn_views[1:])
    with pytest.raises(ValueError, match="not views of"):
        ArrayBatches(np.arange(51), np.zeros(51), batch_size=8, photos=n)
    assert len(ArrayBatches(rows, rows % n, batch_size=8, seed=0)) == 32  # without photos: every row
    # A model trained before this schedule existed keeps its own when its config is read back.
    assert TrainConfig().fine_tune_one_view_per_epoch
    assert not TrainConfig.from_dict({"mode": "fast", "seed": 42}).fine_tune_one_view_per_epoch
