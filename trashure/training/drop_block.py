"""Blocks of the activations at the cut dropped while the top blocks fine-tune (DropBlock, Ghiasi et al.,
"DropBlock: A regularization method for convolutional networks", NeurIPS 2018).

A classifier that has learnt one telling patch (a can's rim, a label's colour, the board's edge) can lean on it
alone. Hiding a contiguous part of the feature map from the unfrozen blocks, a different part each time, makes
them read the rest of the object too. In the fast mode's fine-tuning stage the cached activations at the cut
are those blocks' input, so dropping is a transform of the batch before it is fed: the saved model and
prediction are untouched. A dropped block takes the row's own per-channel means over the map, the value that
says least about any one place in that photo, rather than zeros, which the residual stream at the cut does
not treat as "nothing".
"""

from __future__ import annotations

import numpy as np

from trashure.training.style_mix import BatchTransform

BLOCK_SIDES = (3, 7)  # a block's height and width, drawn apiece, in cells of the cut's 14 x 14 map


def drop_blocks(activations: np.ndarray, rng: np.random.Generator, probability: float,
                sides: tuple[int, int] = BLOCK_SIDES) -> np.ndarray:
    """activations (n, h, w, c): each row, with this probability, gets one rectangle of cells (each side
    drawn from `sides`, clipped to the map) set to the row's per-channel means over (h, w)."""
    x = activations.astype(np.float32, copy=True)
    n, h, w, _ = x.shape
    fill = x.mean(axis=(1, 2))
    for row in range(n):
        if rng.random() >= probability:
            continue
        bh = min(int(rng.integers(sides[0], sides[1] + 1)), h)
        bw = min(int(rng.integers(sides[0], sides[1] + 1)), w)
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        x[row, y0:y0 + bh, x0:x0 + bw, :] = fill[row]
    return x


def block_dropper(probability: float, seed: int) -> BatchTransform | None:
    """A batch transform for keras_loop.ArrayBatches: drop_blocks drawn reproducibly from (seed, epoch, the
    batch's first row); None when probability is 0."""
    if probability <= 0:
        return None

    def transform(batch: np.ndarray, idx: np.ndarray, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([seed, epoch, int(idx[0]) if len(idx) else 0, 11])
        return drop_blocks(batch, rng, probability)

    return transform


def chained(*transforms: BatchTransform | None) -> BatchTransform | None:
    """The given transforms applied in order, those that are None left out; None when none is left."""
    steps = [t for t in transforms if t is not None]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def transform(batch: np.ndarray, idx: np.ndarray, epoch: int) -> np.ndarray:
        for step in steps:
            batch = step(batch, idx, epoch)
        return batch

    return transform
