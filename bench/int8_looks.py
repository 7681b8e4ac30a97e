"""Where the int8 export parts from Keras, look by look: the whole photo, the close-up, and where the close-up goes.

    python bench/int8_looks.py [--model PATH] [--part val|test] [--json OUT]

A model that looks twice has three places where full-integer quantisation can change an answer: the whole-photo
look, the choice of the close-up (the cells tied within 1/64 of the least background, then the half-cell nearest
their mean) and the close-up's own classification. This converts the model as `trashure.export` does (the same
100 calibration photos) with extra outputs (each look's probabilities and the head's cell map), runs it in LiteRT
beside Keras on one part of the model's own split (validation by default: it may choose; the test part is for
the report), and prints, for each of them, how often int8 agrees with Keras, and the agreement the model would
have with int8's close-up replaced by Keras' or its whole look replaced by Keras'. Which cells tie and which
half-cell that picks are recomputed exactly from each runtime's cell map, so a pick that differs comes from the
cells, not from arithmetic. docs/experiments.md ("Where int8 parts from Keras") used it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import DEFAULT_MODEL_PATH, SHARED_DATA_DIR  # noqa: E402
from trashure.glimpse import BACKGROUND_CLASS, GLIMPSE_LAYER, MIRROR_LAYER  # noqa: E402

OUTPUTS = ("whole", "cells", "close", "final")


def looks_model(model):
    """The same layers, returning each look's probabilities and the cell map beside the model's answer."""
    import keras

    from trashure.model import BASE_NAME

    preprocess, base = model.get_layer("preprocess"), model.get_layer(BASE_NAME)
    pool, hidden, probabilities = (model.get_layer(n) for n in ("pool", "dense_hidden", "probabilities"))
    names = {layer.name for layer in model.layers}
    image = keras.Input(model.input_shape[1:], name="image")
    photo = model.get_layer(MIRROR_LAYER)(image) if MIRROR_LAYER in names else image
    features = base(preprocess(model.get_layer("overview")(photo)), training=False)
    whole, cells = probabilities(hidden(pool(features))), probabilities(hidden(features))
    close_up = model.get_layer(GLIMPSE_LAYER)(photo, cells)
    close = probabilities(hidden(pool(base(preprocess(close_up), training=False))))
    final = model.get_layer("look_twice")([whole, close])
    if MIRROR_LAYER in names:
        final = model.get_layer("mean_of_mirrored")(final)
    return keras.Model(image, {"whole": whole, "cells": cells, "close": close, "final": final}, name="looks")


def by_look(outputs: dict, photos: int) -> dict:
    """Per-look arrays as (looks per photo, photos, ...), from batches whose looks are [photos..., mirrors...]."""
    return {k: (v if k == "final" else v.reshape(-1, photos, *v.shape[1:])) for k, v in outputs.items()}


def run_keras(model, images: np.ndarray) -> dict:
    out = {k: [] for k in OUTPUTS}
    for start in range(0, len(images), 8):
        batch = model(images[start:start + 8], training=False)
        for k, v in by_look({k: np.asarray(v) for k, v in batch.items()}, len(images[start:start + 8])).items():
            out[k].append(v)
    return {k: np.concatenate(v, axis=0 if k == "final" else 1) for k, v in out.items()}


def run_int8(content: bytes, images: np.ndarray) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    quantization = {k: d["quantization"] for k, d in runner.get_output_details().items()}
    in_scale, in_zero = runner.get_input_details()["image"]["quantization"]
    out = {k: [] for k in OUTPUTS}
    for i in range(len(images)):
        result = runner(image=np.clip(np.round(images[i:i + 1] / in_scale + in_zero), 0, 255).astype(np.uint8))
        scaled = {k: (v.astype(np.float32) - quantization[k][1]) * quantization[k][0] for k, v in result.items()}
        for k, v in by_look(scaled, 1).items():
            out[k].append(v)
    return {k: np.concatenate(v, axis=0 if k == "final" else 1) for k, v in out.items()}


def picks(cells: np.ndarray, background: int) -> tuple[np.ndarray, np.ndarray]:
    """(tied cells (..., g, g), picked half-cells (..., 2)): the model's own choice (`GlimpseCrop`) on a cell map;
    exactly half-way, where it takes two half-cells equally, the one between them (k + 1/2)."""
    from trashure.glimpse import GlimpseCrop

    crop, shape = GlimpseCrop(background_index=background), cells.shape
    flat = cells.reshape(-1, *shape[-3:])
    tied = crop._tied_cells(flat)
    rows, cols = (np.asarray(w) @ np.arange(w.shape[-1]) for w in crop._axis_picks(tied))
    return np.asarray(tied).astype(bool).reshape(shape[:-1]), np.stack([rows, cols], -1).reshape(*shape[:-3], 2)


def compare(keras_out: dict, int8_out: dict, labels: np.ndarray, background: int) -> dict:
    def answer(whole, close):
        return ((whole + close) / 2).mean(axis=0).argmax(-1)

    def same_top(a, b):  # each look's probabilities, averaged over the photo and its mirror image
        return float((a.mean(0).argmax(-1) == b.mean(0).argmax(-1)).mean())

    k_top, q_top = keras_out["final"].argmax(-1), int8_out["final"].argmax(-1)
    differ = k_top != q_top
    k_tied, k_pick = picks(keras_out["cells"], background)
    q_tied, q_pick = picks(int8_out["cells"], background)
    return {
        "photos": int(len(labels)), "looks": int(k_tied.shape[0] * k_tied.shape[1]),
        "keras_accuracy": float((k_top == labels).mean()), "int8_accuracy": float((q_top == labels).mean()),
        "agreement": float((k_top == q_top).mean()),
        "differ": int(differ.sum()), "int8_right_where_they_differ": int((differ & (q_top == labels)).sum()),
        "keras_right_where_they_differ": int((differ & (k_top == labels)).sum()),
        "whole_look_agreement": same_top(keras_out["whole"], int8_out["whole"]),
        "close_up_look_agreement": same_top(keras_out["close"], int8_out["close"]),
        "agreement_with_keras_close_up": float((answer(int8_out["whole"], keras_out["close"]) == k_top).mean()),
        "agreement_with_keras_whole_look": float((answer(keras_out["whole"], int8_out["close"]) == k_top).mean()),
        "looks_with_other_tied_cells": float((k_tied != q_tied).any(axis=(-2, -1)).mean()),
        "looks_with_another_half_cell": float((k_pick != q_pick).any(-1).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--part", choices=("val", "test"), default="val")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from trashure.export import part_set, representative_images
    from trashure.glimpse import has_glimpse
    from trashure.litert import to_tflite
    from trashure.prediction import load_model_and_card

    model, card, classes = load_model_and_card(args.model)
    if not has_glimpse(model):
        sys.exit(f"{args.model} looks once: its int8 export has no close-up to trace")
    data = [SHARED_DATA_DIR / name for name in card["data"].get("folders", [card["data"].get("folder")])]
    missing = [str(d) for d in data if not d.is_dir()]
    if missing:
        sys.exit(f"needs the model's data folders: {', '.join(missing)} not found")
    looks = looks_model(model)
    start = time.perf_counter()
    content = to_tflite(looks, representative_images(card, data))
    print(f"int8 conversion {time.perf_counter() - start:.0f} s", flush=True)
    images, labels = part_set(card, data, args.part)
    background = list(classes).index(BACKGROUND_CLASS)
    row = {"model": str(args.model), "run_id": card.get("run_id"), "part": args.part,
           **compare(run_keras(looks, images), run_int8(content, images), labels, background)}
    for key, value in row.items():
        print(f"{key:32s} {value:.2%}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
