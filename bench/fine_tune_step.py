"""One fine-tuning epoch on cached activations, compiled three ways, side by side in one run.

    python bench/fine_tune_step.py [--photos 1509] [--blocks 4] [--epochs 3]

The fast mode's fine-tuning stage trains the top blocks and the head on activations cached at the cut
(14x14x96 for 4 blocks). An epoch is most of its time, so this asks whether the compiled step can be made
cheaper on the CPU: Keras' default (`jit_compile="auto"`, which leaves this model to TensorFlow's graph
executor and oneDNN), XLA (`jit_compile=True`), and mixed bfloat16 (AMX/AVX-512 BF16 where the CPU has them).
Each runs in its own process (the precision policy is global), on random activations of the cached shape and
the recipe's optimiser, batch size and steps per execution; the mean of `--epochs` epochs after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = {"default (jit auto)": "auto", "XLA (jit_compile=True)": "xla", "mixed bfloat16": "bf16"}


def one_variant(variant: str, photos: int, blocks: int, epochs: int) -> dict:
    """Runs in a child process: times `epochs` fine-tuning epochs of the cut classifier."""
    import keras
    import numpy as np

    if variant == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from trashure.config import TrainConfig
    from trashure.model import build_model, classifier_from_cut, split_at_cut, unfreeze_top
    from trashure.training.fast import steps_per_execution

    config = TrainConfig(fine_tune_blocks=blocks)
    model = build_model()
    classifier = classifier_from_cut(model, split_at_cut(model, blocks)[1])
    unfreeze_top(model, blocks)
    classifier.compile(optimizer=keras.optimizers.Adam(config.fine_tune_learning_rate),
                       loss="categorical_crossentropy", metrics=["accuracy"],
                       steps_per_execution=steps_per_execution(config), jit_compile=(variant == "xla"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(photos, *classifier.input_shape[1:])).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 4, photos), 4)
    t0 = time.perf_counter()
    classifier.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)  # traces (and compiles) the step
    warm_up = time.perf_counter() - t0
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        classifier.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - t0)
    return {"jit_compile": bool(classifier.jit_compile), "warm_up_s": warm_up, "epoch_s": times,
            "input": list(classifier.input_shape[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=1509, help="training photos (trashnet4's training part)")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_variant(args.child, args.photos, args.blocks, args.epochs)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = {}
    for name, variant in VARIANTS.items():
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--photos", str(args.photos),
                              "--blocks", str(args.blocks), "--epochs", str(args.epochs)],
                             capture_output=True, text=True, env=env, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = statistics.mean(results["default (jit auto)"]["epoch_s"])
    print(f"{args.photos} photos, activations {results['default (jit auto)']['input']}, {args.blocks} blocks, "
          f"{os.cpu_count()} CPUs\n")
    print("| step compiled as | XLA | first epoch (s) | an epoch (s), mean | against the default |")
    print("|---|---|---:|---:|---:|")
    for name, r in results.items():
        mean = statistics.mean(r["epoch_s"])
        print(f"| {name} | {'yes' if r['jit_compile'] else 'no'} | {r['warm_up_s']:.1f} | {mean:.2f} "
              f"({min(r['epoch_s']):.2f}-{max(r['epoch_s']):.2f}) | {mean / base:.2f}x the time |")


if __name__ == "__main__":
    main()
