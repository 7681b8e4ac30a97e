"""Which weights should the fine-tuning stage keep? Scored across sources (trashnet4 -> all of mixed4).

    python bench/fine_tune_rules.py SEEDS OUT.json [EPOCHS]    e.g. 42,0,1,2,3 /tmp/rules.json 30

For each split seed, the default recipe trains as usual, but its fine-tuning stage runs EPOCHS (20) epochs with
no early stopping and keeps the weights of every epoch. Each rule is then applied after the fact and its model
scored on every held-out photo through the same cut: early stopping with patience p and at most c epochs
(`p3c10`: the recipe before weight averaging), the mean of the epochs such a run would have made (`swa_*`),
the mean up to its best epoch (`swa_to_best_*`), and weight-space mixes of the frozen and the fine-tuned
model (`wise*`); with averaging, the first b epochs left out of the mean (`swa_from{b}_*`: a burn-in, as SWA and
SWAD start averaging once the weights have left the start). Each rule's `worse_p` is the recipe's keep test
against the frozen stage (a fine-tuned model with p below 0.05 is set aside). Early stopping is a function of
the validation losses, so one run serves every rule; the `p3c10` rows reproduce bench/cross_source.py's figures
of the same recipe to the photo.
Raw rows of the run that chose weight averaging: bench/results/fine_tune_rules_seeds.json; of the one that chose
30 epochs, all averaged (EPOCHS 30, seeds 4-12): bench/results/fine_tune_rules_30_seeds.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trashure.features as features  # noqa: E402
import trashure.training.fast as fast  # noqa: E402
from trashure.config import REPO_ROOT, TrainConfig  # noqa: E402
from trashure.data import decode_dataset, scan_sources  # noqa: E402
from trashure.training.keras_parts import FINE_TUNE_STAGE, photo_losses, worse_p_value  # noqa: E402
from trashure.training.prepared import prepare_data  # noqa: E402
from trashure.training.run import fit  # noqa: E402
from trashure.training.views import extract, frozen_runner  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
DATA = [SHARED / "trashnet4", SHARED / "mixed4"]
HELD_OUT = "mixed4"
STOPPING = ((3, 10), (5, 20), (3, 20), (5, 30), (8, 30))  # (patience, most epochs), as far as the run went
BURN_IN = (1, 2, 3)  # epochs left out at the start of a mean
captured: dict = {}


def record_every_epoch(model, trainer, val, config, history, callback, batches, run, checkpoint=None, echo=None):
    """Stands in for run_second_stage: every epoch, no stopping; the weights kept for the rules."""
    import keras

    captured["frozen"] = model.get_weights()
    captured["frozen_val_loss"] = float(trainer.evaluate(*val, verbose=0, batch_size=64)[0])
    epochs: list = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs.append(model.get_weights())

    trainer.fit(batches(), validation_data=val, epochs=config.fine_tune_epochs, verbose=0, shuffle=False,
                callbacks=[callback, Snapshot()])
    captured.update(epochs=epochs, trainer=trainer, val=val)
    return {"fine_tune_kept": True}


def stopped(val_losses: np.ndarray, patience: int, most: int) -> tuple[int, int]:
    """(best epoch index, epochs run) of EarlyStopping(val_loss, patience) over at most `most` epochs."""
    best = epoch = 0
    for epoch in range(min(most, len(val_losses))):
        if val_losses[epoch] < val_losses[best]:
            best = epoch
        if epoch - best >= patience:
            break
    return best, epoch + 1


def mean(weights: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [np.mean([w[i] for w in weights], axis=0) for i in range(len(weights[0]))]


def rules(val_losses: np.ndarray, frozen, frozen_loss: float, epochs) -> dict[str, list[np.ndarray]]:
    out = {}
    for patience, most in STOPPING:
        if most > len(epochs):
            continue
        best, run = stopped(val_losses, patience, most)
        kept = epochs[best] if val_losses[best] < frozen_loss else frozen
        out[f"p{patience}c{most}"] = kept
        out[f"swa_p{patience}c{most}"] = mean(epochs[:run])
        out[f"swa_to_best_p{patience}c{most}"] = mean(epochs[:best + 1])
        if patience >= 5:
            for b in BURN_IN:
                out[f"swa_from{b}_p{patience}c{most}"] = mean(epochs[min(b, run - 1):run])
        if (patience, most) == (3, 10):
            for a in (0.5, 0.7):
                out[f"wise{a}_p3c10"] = [(1 - a) * f + a * k for f, k in zip(frozen, kept)]
    out[f"swa_all{len(epochs)}"] = mean(epochs)
    out["frozen"] = frozen
    return out


def main(seeds: list[int], out_path: Path, epochs: int = 20) -> None:
    features.ViewCache.__init__.__defaults__ = (None, len(seeds) + 2)  # every seed's views stay cached
    fast.run_second_stage = record_every_epoch
    held = scan_sources(DATA)
    held.records = [r for r in held.records if r.source == HELD_OUT]
    images, labels = decode_dataset(held), np.array([r.label for r in held.records])
    activations, results = None, []
    for seed in seeds:
        t0 = time.time()
        # The rules are scored on the single pass at 224x224 (the weights they choose), as when it was run.
        config = TrainConfig(seed=seed, fine_tune_epochs=epochs, fine_tune_patience=epochs, glimpse_side=0.0)
        data = prepare_data(DATA, config, keep=lambda r: r.source != HELD_OUT)
        model, facts = fit(data, config, echo=lambda line: None)
        if activations is None:
            activations = extract(frozen_runner(model, config.fine_tune_blocks), images)[0].astype(np.float32)
        losses = np.array([h["val_loss"] for h in facts["history"] if h["stage"] == FINE_TUNE_STAGE])
        trainer, val = captured["trainer"], captured["val"]
        row = {"seed": seed, "frozen_val_loss": captured["frozen_val_loss"], "val_loss_per_epoch": losses.tolist()}
        model.set_weights(captured["frozen"])
        frozen_losses = photo_losses(trainer, val)
        for name, weights in rules(losses, captured["frozen"], captured["frozen_val_loss"], captured["epochs"]).items():
            model.set_weights(weights)
            val_loss, val_accuracy = trainer.evaluate(*val, verbose=0, batch_size=64)[:2]
            predicted = trainer.predict(activations, batch_size=128, verbose=0).argmax(1)
            row[name] = {"accuracy": float((predicted == labels).mean()), "val_loss": float(val_loss),
                         "val_accuracy": float(val_accuracy),
                         "worse_p": worse_p_value(photo_losses(trainer, val), frozen_losses),
                         "recall": {c: float((predicted[labels == i] == i).mean())
                                    for i, c in enumerate(data.dataset.classes)}}
            print(f"seed {seed:>3}  {name:<20} {row[name]['accuracy']:.2%}  val {val_accuracy:.2%}", flush=True)
        row["wall_s"] = time.time() - t0
        results.append(row)
        out_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main([int(s) for s in sys.argv[1].split(",")], Path(sys.argv[2]), *(int(e) for e in sys.argv[3:]))
