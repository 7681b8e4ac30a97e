"""Two fine-tuning runs from one frozen stage: ensemble them, or average their weights (a "model soup")?

    python bench/fine_tune_soups.py SEEDS OUT.json        e.g. 42,0,1,2,3 /tmp/soups.json

For each split seed, the default recipe trains trashnet4 -> all of mixed4 as bench/cross_source.py does, but
its fine-tuning stage runs twice from the same frozen-stage model, on the same cached views, in other orders
and other draws of a view per photo (run A is the recipe's own and reproduces bench/cross_source.py's row to the
photo; run B draws from another seed, with a fresh optimiser). Each is then scored through the whole saved
model (it looks twice, at the photo and its mirror image) on every held-out photo, beside:
- `soup`: the mean of A's and B's weights, one model (Wortsman et al. 2022, "Model soups"): free at prediction;
- `ensemble`: the mean of A's and B's probabilities: two tops to run at prediction.
Validation (the training sources' own 10%) is scored for each, as what could choose.

Measured on seeds 42, 0, 1 (bench/results/fine_tune_soups_seeds.json, ~11 minutes a seed): A 69.25%, B 69.06%,
soup 69.04%, ensemble 69.48% on the mean; not adopted (docs/experiments.md, "Two fine-tuning runs").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import trashure.training.fast as fast  # noqa: E402
from cross_source import SHARED  # noqa: E402
from trashure.config import TrainConfig  # noqa: E402
from trashure.data import decode_dataset, scan_sources  # noqa: E402

DATA = [SHARED / "trashnet4", SHARED / "mixed4"]
HELD_OUT = "mixed4"
RUN_B_SEED_OFFSET = 1000
captured: dict = {}
recipe_stage = fast.run_second_stage


def stage_twice(model, trainer, val, config, history, callback, batches, run, checkpoint=None, echo=print):
    """Stands in for run_second_stage: the recipe's stage (A), then the same stage again from the frozen
    weights with another draw of batches and a fresh optimiser (B). The model is left with A's weights."""
    from trashure.model import compile_model

    frozen = model.get_weights()
    facts_a = recipe_stage(model, trainer, val, config, history, callback, batches, run, checkpoint, echo)
    weights_a = model.get_weights()
    model.set_weights(frozen)
    compile_model(trainer, config.fine_tune_learning_rate, fast.steps_per_execution(config))

    def batches_b():
        b = batches()
        b.rng = np.random.default_rng(config.seed + RUN_B_SEED_OFFSET)
        b.order = b._draw_order()
        return b

    facts_b = recipe_stage(model, trainer, val, config, history, callback, batches_b, run, checkpoint, echo)
    captured.update(model=model, trainer=trainer, val=val, a=weights_a, b=model.get_weights(), facts_b=facts_b)
    model.set_weights(weights_a)
    return facts_a


def scored(probabilities: np.ndarray, labels: np.ndarray, classes) -> dict:
    predicted = probabilities.argmax(1)
    return {"accuracy": float((predicted == labels).mean()),
            "recall": {c: float((predicted[labels == i] == i).mean()) for i, c in enumerate(classes)}}


def main(seeds: list[int], out_path: Path) -> None:
    from trashure.evaluation import predict_arrays
    from trashure.training.prepared import prepare_data
    from trashure.training.run import fit

    fast.run_second_stage = stage_twice
    results = []
    images = labels = None
    for seed in seeds:
        t0 = time.time()
        config = TrainConfig(seed=seed)
        data = prepare_data(DATA, config, keep=lambda r: r.source != HELD_OUT)
        assembled, facts = fit(data, config, echo=lambda line: None)
        classes = data.dataset.classes
        if images is None:
            held = scan_sources(DATA, classes)
            held.records = [r for r in held.records if r.source == HELD_OUT]
            images = decode_dataset(held, int(assembled.input_shape[1]))
            labels = np.array([r.label for r in held.records])
        model, trainer, val = captured["model"], captured["trainer"], captured["val"]
        variants = {"a": captured["a"], "b": captured["b"],
                    "soup": [(x + y) / 2 for x, y in zip(captured["a"], captured["b"])]}
        row: dict = {"seed": seed, "kept": [facts.get("fine_tune_kept"), captured["facts_b"].get("fine_tune_kept")]}
        probabilities = {}
        for name, weights in variants.items():
            # The saved model is assembled from the training model's layers: their weights are its weights.
            model.set_weights(weights)
            probabilities[name] = predict_arrays(assembled, images)
            row[name] = scored(probabilities[name], labels, classes)
            row[name]["val_loss"], row[name]["val_accuracy"] = map(float, trainer.evaluate(*val, verbose=0,
                                                                                          batch_size=64)[:2])
        val_probs = []
        for name in ("a", "b"):
            model.set_weights(variants[name])
            val_probs.append(trainer.predict(val[0], batch_size=64, verbose=0))
        row["ensemble"] = scored((probabilities["a"] + probabilities["b"]) / 2, labels, classes)
        row["ensemble"]["val_accuracy"] = float((np.mean(val_probs, 0).argmax(1) == val[1].argmax(1)).mean())
        if np.array_equal(probabilities["a"], probabilities["b"]):
            raise RuntimeError("runs A and B scored the same: the saved model does not share the trained layers")
        row["wall_s"] = time.time() - t0
        results.append(row)
        print(f"seed {seed:>3}  " + "  ".join(f"{n} {row[n]['accuracy']:.2%} (val {row[n]['val_accuracy']:.2%})"
                                             for n in ("a", "b", "soup", "ensemble")) + f"  {row['wall_s']:.0f} s",
              flush=True)
        out_path.write_text(json.dumps(results, indent=1))
    for name in ("a", "b", "soup", "ensemble"):
        acc = [r[name]["accuracy"] for r in results]
        val_acc = [r[name]["val_accuracy"] for r in results]
        print(f"{name:<9} {' / '.join(f'{a:.2%}' for a in acc)}  mean {np.mean(acc):.2%}  val {np.mean(val_acc):.2%}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main([int(s) for s in sys.argv[1].split(",")], Path(sys.argv[2]))
