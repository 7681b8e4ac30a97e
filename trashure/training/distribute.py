"""Where training runs: one device, several on one machine (mirrored), or several machines (multi-worker).

- `default`: TensorFlow's default strategy, one device.
- `mirrored`: `tf.distribute.MirroredStrategy` over every GPU of the machine (or, without a GPU, every
  logical CPU device: two on a CPU box configured with `tf.config.set_logical_device_configuration`).
- `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine (or per GPU), each
  started with the same command and its own `TF_CONFIG` (the cluster and this worker's task).

The model is built and compiled under the strategy's scope; Keras splits each global batch of
`batch_size` across the replicas. Only the chief (task `chief`, or worker 0 when there is none) writes the
run folder, checkpoints and the model; the other workers train into a scratch folder that is removed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trashure.errors import TrashureError

if TYPE_CHECKING:  # TensorFlow loads when a strategy is made
    import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass(frozen=True)
class WorkerRole:
    index: int  # this worker's place among the workers that share the work (0 .. count-1)
    count: int
    is_chief: bool


def worker_role(strategy_name: str, tf_config: str | None = None) -> WorkerRole:
    """This process's role, from TF_CONFIG for `multiworker`; a single chief otherwise."""
    if strategy_name != "multiworker":
        return WorkerRole(0, 1, True)
    raw = tf_config if tf_config is not None else os.environ.get("TF_CONFIG", "")
    try:
        spec = json.loads(raw)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise TrashureError("--strategy multiworker needs TF_CONFIG: a JSON object with 'cluster' (e.g. "
                         '{"worker": ["host1:12345", "host2:12345"]}) and this process\'s \'task\' '
                         '(e.g. {"type": "worker", "index": 0}); see the README') from None
    workers = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
    place = index if kind == "chief" else len(cluster.get("chief", [])) + index
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
    return WorkerRole(place, max(len(workers), 1), is_chief)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for a name. For `multiworker` it must be made before any other
    TensorFlow work in the process, which is why training makes it first."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        # Replicas on CPU devices reduce with plain copies; NCCL is for GPUs.
        cross = None if gpus else tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross)
    worker_role(name)  # a clear message for a missing or malformed TF_CONFIG
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _let_keras_fit_under_multiworker()
    return strategy


def _let_keras_fit_under_multiworker() -> None:
    """Keras 3's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585, open; tensorflow#72388):
    its first-batch build reduces a nested batch that the collective reduce cannot take, and every step
    reduces scalar metrics along an axis they do not have. Two private functions of its TensorFlow trainer
    are replaced, only in a process that made a multi-worker strategy: the build looks at this worker's own
    first batch (it needs shapes only) and scalar metrics are averaged over every replica of every worker,
    so that all workers see the same logs and stop at the same epoch. tests/test_distribute.py trains
    two real workers through it."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_trashure_multiworker_fix", False):
        return
    original_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None) if trainer._is_per_replica_instance(v) else v, values)
        return original_reduce(values, strategy, reduction)

    def local_first(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return tf.distribute.get_strategy().experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                with self.distribute_strategy.scope():
                    data_batch = tree.map_structure(local_first, next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._trashure_multiworker_fix = True


def wait_for_files(paths: list[Path], timeout_s: float = 3600.0, poll_s: float = 0.2) -> None:
    """Wait until every path exists (the other workers' shards of a shared cache)."""
    deadline = time.time() + timeout_s
    while not all(p.exists() for p in paths):
        if time.time() > deadline:
            missing = ", ".join(str(p) for p in paths if not p.exists())
            raise TimeoutError(f"gave up waiting for the other workers' shards: {missing}")
        time.sleep(poll_s)
