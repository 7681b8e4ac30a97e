"""Training runs that go wrong: an exception, SIGKILL, Cancel, two Starts at once, a restarted dashboard."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, cli, make_dataset
from trashure.config import TrainConfig
from trashure.errors import RunError
from trashure.launcher import cancel_run, current_run, start_run
from trashure.prediction import Classifier
from trashure.runs import list_runs
from trashure.training import train


def wait_for(predicate, timeout: float = 240, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "data", per_class=30)


def no_partial_files(run) -> bool:
    return not [p for p in run.dir.iterdir() if "partial" in p.name or p.name.endswith(".tmp")]


@pytest.mark.slow
def test_exception_mid_run_is_recorded_as_failed(data, tmp_path, monkeypatch):
    import keras

    import trashure.training.fast as training

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("disk on fire")

    real = training.early_stopping
    monkeypatch.setattr(training, "early_stopping", lambda config: [real(config), Boom()][1])
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(data, TrainConfig(epochs=3, augmented_views=0), runs_dir=tmp_path / "runs", echo=None)
    (run,) = list_runs(tmp_path / "runs")
    status = run.status()
    assert status["state"] == "failed" and "RuntimeError: disk on fire" in status["error"]
    assert "Traceback" in status["traceback"]
    assert not run.model_path.exists() and no_partial_files(run)


@pytest.mark.slow
def test_sigkill_mid_epoch_leaves_a_consistent_run(data, tmp_path):
    runs_dir = tmp_path / "runs"
    run = start_run(TrainConfig(mode="exact", epochs=50, batch_size=4), data, runs_dir)
    wait_for(lambda: (run.raw_status().get("epoch") or 0) >= 1 and run.has_model, what="the first epoch")
    time.sleep(0.7)  # into the next epoch
    pid = run.raw_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: run.state == "failed", 30, "the dead run to be seen as failed")

    status = run.status()
    assert status["stale"] is True and "died" in status["error"]
    assert no_partial_files(run)
    # The best-val_accuracy checkpoint written before the kill is a complete, loadable model.
    assert Classifier(run.model_path).classes == ("can", "glass_bottle", "other", "plastic_bottle")
    # A dead run does not block the next one.
    assert current_run(runs_dir) is None
    nxt = start_run(TrainConfig(epochs=1, augmented_views=0), data, runs_dir)
    wait_for(lambda: nxt.state not in ("queued", "running"), what="the next run")
    assert nxt.state == "done", nxt.log_path().read_text()[-2000:]


@pytest.mark.slow
def test_cancel_stops_a_running_run(data, tmp_path):
    run = start_run(TrainConfig(mode="exact", epochs=50, batch_size=4), data, tmp_path / "runs")
    wait_for(lambda: (run.raw_status().get("epoch") or 0) >= 1, what="the first epoch")
    cancel_run(run)
    wait_for(lambda: run.state == "cancelled", 120, "the run to cancel")
    assert run.raw_status()["epoch"] < 50
    assert no_partial_files(run)
    assert current_run(tmp_path / "runs") is None


@pytest.mark.slow
def test_two_starts_at_once_start_one_run(data, tmp_path):
    runs_dir = tmp_path / "runs"
    results, barrier = [], threading.Barrier(2)

    def start():
        barrier.wait()
        try:
            results.append(start_run(TrainConfig(epochs=1, augmented_views=0), data, runs_dir))
        except RunError as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, RunError)]
    assert len(started) == 1 and len(refused) == 1 and "is going on" in str(refused[0])
    assert len(list_runs(runs_dir)) == 1
    wait_for(lambda: started[0].state not in ("queued", "running"), what="the run")
    assert started[0].state == "done"


@pytest.mark.slow
def test_restarted_dashboard_finds_the_running_run(data, tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    monkeypatch.setenv("TRASHURE_RUNS", str(runs_dir))
    monkeypatch.setenv("TRASHURE_DATA", str(data))
    run = start_run(TrainConfig(mode="exact", epochs=50, batch_size=4), data, runs_dir)
    try:
        wait_for(lambda: run.raw_status().get("state") == "running", what="the run to start")
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()  # a fresh session
        at.switch_page("pages/train.py").run()
        assert not at.exception
        assert any(run.id in m.value and "running" in m.value for m in at.markdown)
        assert any("Cancel" in b.label for b in at.button)
    finally:
        cancel_run(run)
        wait_for(lambda: run.state != "running", 120, "the run to stop")


def test_time_left_comes_from_the_phase_while_features_are_computed_then_from_epochs():
    import time

    from trashure.runs import best_val_accuracy, remaining_seconds

    now = time.time()
    features = {"state": "running", "phase": "features", "phase_progress": 0.25, "phase_started_unix": now - 30,
                "epochs": 20}
    assert 85 < remaining_seconds(features, []) < 95  # a quarter in 30 s: about 90 s to go
    history = [{"epoch": i, "seconds": 2.0, "val_loss": loss, "val_accuracy": acc, "stage": "frozen"}
               for i, (loss, acc) in enumerate([(0.5, 0.8), (0.3, 0.85), (0.4, 0.9)], 1)]
    training = {"state": "running", "phase": "training", "epochs": 20}
    assert remaining_seconds(training, history) == 2.0 * 17
    assert remaining_seconds({**training, "state": "done"}, history) is None
    assert best_val_accuracy(history) == 0.85  # the kept (lowest val loss) epoch, not the last
    fine = history + [{"epoch": 4, "seconds": 9.0, "val_loss": 0.35, "val_accuracy": 0.7, "stage": "fine-tune"}]
    assert best_val_accuracy(fine) == 0.7  # the stage now training


def test_a_run_with_unreadable_files_is_listed_as_such_and_the_others_still_show(tmp_path, monkeypatch):
    import json

    from trashure.runs import create_run, list_runs

    runs_dir = tmp_path / "runs"
    good = create_run({"mode": "fast", "epochs": 2}, [tmp_path], runs_dir, run_id="20260101-000000-fast-good")
    good.update_status(state="done")
    truncated = create_run({"mode": "fast"}, [tmp_path], runs_dir, run_id="20260102-000000-fast-trnc")
    (truncated.dir / "status.json").write_text('{"state": "do')
    garbage = create_run({"mode": "fast"}, [tmp_path], runs_dir, run_id="20260103-000000-fast-garb")
    (garbage.dir / "config.json").write_text(json.dumps([1, 2, 3]))
    (garbage.dir / "history.csv").write_text("epoch,loss\nx,y\n")

    states = {r.id: r.state for r in list_runs(runs_dir)}
    assert states == {good.id: "done", truncated.id: "unreadable", garbage.id: "unreadable"}
    assert "status.json" in truncated.status()["error"] and "config.json" in garbage.status()["error"]
    assert garbage.history() == []
    result = cli("runs", "--runs-dir", runs_dir, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and sum("unreadable" in line for line in lines) == 2

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRASHURE_RUNS", str(runs_dir))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("pages/results.py").run()
    assert not at.exception
    names = at.selectbox[0].options
    at.selectbox[0].select_index(next(i for i, n in enumerate(names) if "garb" in n)).run()
    assert not at.exception and any("cannot be shown" in e.value for e in at.error)


def test_a_queued_run_that_never_started_or_whose_process_died_does_not_block_the_next(tmp_path):
    from trashure.runs import create_run

    runs_dir = tmp_path / "runs"
    never = create_run({"mode": "fast"}, [tmp_path], runs_dir, run_id="20260101-000000-fast-nopid")
    old = time.time() - 3600
    os.utime(never.dir / "config.json", (old, old))
    dead = create_run({"mode": "fast"}, [tmp_path], runs_dir, run_id="20260101-000001-fast-dead")
    dead.update_status(pid=2**22 + 12345)  # no such process
    fresh = create_run({"mode": "fast"}, [tmp_path], runs_dir, run_id="20260101-000002-fast-new")
    assert never.state == "failed" and "never started" in never.status()["error"]
    assert dead.state == "failed" and "died" in dead.status()["error"]
    assert fresh.state == "queued"  # just created: its launcher is about to record the pid
    assert current_run(runs_dir).id == fresh.id


@pytest.mark.slow
def test_a_run_survives_the_process_that_started_it(data, tmp_path):
    """The dashboard may restart: a run launched by a process that then exits still reaches done."""
    import subprocess
    import sys

    runs_dir = tmp_path / "runs"
    script = ("import sys; from trashure.config import TrainConfig; from trashure.launcher import start_run; "
              f"start_run(TrainConfig(epochs=1, augmented_views=0, fine_tune_blocks=0), [{str(data)!r}], "
              f"{str(runs_dir)!r}); sys.exit(0)")
    launcher = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert launcher.returncode == 0
    (run,) = list_runs(runs_dir)
    wait_for(lambda: run.state not in ("queued", "running"), what="the run started by the exited process")
    assert run.state == "done", run.log_path().read_text()[-2000:]
