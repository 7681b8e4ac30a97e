"""tf.distribute: the worker roles from TF_CONFIG, and real training runs under `mirrored` (two logical CPU
devices) and `multiworker` (two processes on localhost) that reach the default strategy's accuracy."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import CLASSES, REPO
from trashure.errors import TrashureError
from trashure.training.distribute import WorkerRole, worker_role

TRAIN_PER_CLASS, HELD_OUT_PER_CLASS = 40, 25
OPTIONS = dict(epochs=6, batch_size=16, augmented_views=1, fine_tune_blocks=1, fine_tune_epochs=2, seed=5)


def test_worker_roles_come_from_tf_config():
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    first = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    second = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    assert worker_role("multiworker", first) == WorkerRole(0, 2, True)  # worker 0 is the chief when none is named
    assert worker_role("multiworker", second) == WorkerRole(1, 2, False)
    with_chief = {"chief": ["localhost:0"], "worker": ["localhost:1"]}
    assert worker_role("multiworker", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})) \
        == WorkerRole(1, 2, False)
    assert worker_role("multiworker", json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})) \
        == WorkerRole(0, 2, True)
    assert worker_role("mirrored", "not json") == WorkerRole(0, 1, True)  # TF_CONFIG matters to multiworker only
    with pytest.raises(TrashureError, match="needs TF_CONFIG"):
        worker_role("multiworker", "")


def test_a_multiworker_run_without_tf_config_is_refused_clearly(tmp_path):
    from conftest import make_dataset

    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "trashure", "train", "--data", str(make_dataset(tmp_path / "d")),
                             "--strategy", "multiworker", "--runs-dir", str(tmp_path / "runs")],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 2 and "needs TF_CONFIG" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


@pytest.fixture(scope="module")
def real_subset(tmp_path_factory, shared_data_module):
    """40 photos a class of trashnet4 to train on, and 25 others a class to judge every strategy by."""
    root = tmp_path_factory.mktemp("subset")
    for name in CLASSES:
        photos = sorted((shared_data_module / name).glob("*.jpg"))[::3]
        for folder, chosen in (("train", photos[:TRAIN_PER_CLASS]),
                               ("held_out", photos[TRAIN_PER_CLASS:TRAIN_PER_CLASS + HELD_OUT_PER_CLASS])):
            (root / folder / name).mkdir(parents=True)
            for p in chosen:
                shutil.copy(p, root / folder / name / p.name)
    return root


@pytest.fixture(scope="module")
def shared_data_module():
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"real photos not found at {SHARED_DATA} (../shared/data/trashnet4 beside the repo)")
    return SHARED_DATA


def _held_out_accuracy(model: Path, subset: Path) -> float:
    from trashure.evaluation import evaluate_folder

    return evaluate_folder(model, subset / "held_out", split="all")["accuracy"]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def default_accuracy(real_subset, tmp_path_factory):
    from trashure.config import TrainConfig
    from trashure.training import train

    runs = tmp_path_factory.mktemp("default_runs")
    os.environ["TRASHURE_CACHE"], old = str(runs / "cache"), os.environ.get("TRASHURE_CACHE")
    try:
        run = train(real_subset / "train", TrainConfig(**OPTIONS), runs_dir=runs, echo=None)
    finally:
        os.environ.pop("TRASHURE_CACHE") if old is None else os.environ.__setitem__("TRASHURE_CACHE", old)
    assert run.state == "done"
    return _held_out_accuracy(run.model_path, real_subset)


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from trashure.config import TrainConfig
    from trashure.training import train
    run = train(sys.argv[1], TrainConfig(strategy="mirrored", **json.loads(sys.argv[3])), runs_dir=sys.argv[2])
    print("RUN", run.dir)
""")


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_trains_as_well_as_the_default(real_subset, default_accuracy, tmp_path):
    env = {**os.environ, "TRASHURE_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(real_subset / "train"), str(tmp_path / "runs"),
                             json.dumps(OPTIONS)], capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy mirrored: 2 replica(s) in sync" in result.stdout
    run_dir = Path(result.stdout.split("RUN ")[-1].strip())
    assert json.loads((run_dir / "config.json").read_text())["strategy"] == "mirrored"
    history = [line for line in (run_dir / "history.csv").read_text().splitlines()[1:]]
    assert any(line.startswith("fine-tune") for line in history)  # both stages ran under the strategy
    accuracy = _held_out_accuracy(run_dir / "mobilenetv2_trashure.keras", real_subset)
    print(f"held-out accuracy: mirrored {accuracy:.2%}, default {default_accuracy:.2%}")
    assert accuracy > 0.6 and abs(accuracy - default_accuracy) <= 0.1, (accuracy, default_accuracy)


@pytest.mark.slow
def test_two_workers_on_localhost_share_the_views_and_train_as_well_as_the_default(real_subset, default_accuracy,
                                                                                   tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    cache = tmp_path / "cache"  # shared by both workers: each fills its shard of the views
    args = [sys.executable, "-m", "trashure", "train", "--data", str(real_subset / "train"), "--strategy",
            "multiworker", "--runs-dir", str(tmp_path / "runs")]
    for key, value in OPTIONS.items():
        args += [f"--{key.replace('_', '-').replace('augmented-views', 'views')}", str(value)]
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TRASHURE_CACHE": str(cache)}
        workers.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                        env=env))
    outputs = [w.communicate(timeout=900) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    assert "worker finished; the chief wrote the run" in outputs[1][0]
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]  # the chief's alone
    assert json.loads((run_dir / "config.json").read_text())["strategy"] == "multiworker"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
    shards = sorted(p.name for p in cache.glob("views/*.shards/*.npz"))
    assert shards == ["shard-0-of-2.npz", "shard-1-of-2.npz"]
    accuracy = _held_out_accuracy(run_dir / "mobilenetv2_trashure.keras", real_subset)
    print(f"held-out accuracy: multiworker {accuracy:.2%}, default {default_accuracy:.2%}")
    assert accuracy > 0.6 and abs(accuracy - default_accuracy) <= 0.1, (accuracy, default_accuracy)
