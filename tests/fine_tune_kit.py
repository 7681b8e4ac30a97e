"""What the tests of the fast fine-tuning stage's batch transforms share (MixStyle, mixup, DropBlock): the
ArrayBatches that fine_tune_on_cut builds from a config, caught before any training."""

from __future__ import annotations

import numpy as np

import trashure.model as model_module
from trashure.config import CLASSES, TrainConfig


def fine_tuning_batches(monkeypatch, cached: dict[str, np.ndarray], train_labels: np.ndarray, config: TrainConfig):
    """The batches fine_tune_on_cut would train on, for cached activations {"train": (views, n, ...), "val":
    (1, m, ...)} and n training labels; no model is built and nothing trains."""
    from trashure.training import fast

    captured = {}

    def second_stage(model, trainer, val, config, history, callback, batches, run, echo=print):
        captured["batches"] = batches()
        return {}

    class Data:
        class dataset:
            classes = CLASSES
        labels = {"train": np.asarray(train_labels), "val": np.zeros(cached["val"].shape[1], int)}

    monkeypatch.setattr(fast, "run_second_stage", second_stage)
    monkeypatch.setattr(model_module, "unfreeze_top", lambda model, blocks: [])
    monkeypatch.setattr(model_module, "compile_model", lambda *a, **k: None)
    fast.fine_tune_on_cut(None, None, cached, Data(), config, None, lambda *a: None, [],
                          np.ones(len(train_labels), np.float32))  # a weight a photo
    return captured["batches"]
