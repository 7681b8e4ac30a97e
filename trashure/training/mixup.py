"""Mixup of the fast mode's cached features (Zhang et al., "mixup", ICLR 2018; at a hidden layer: Verma et al.,
"Manifold Mixup", ICML 2019).

Each training row becomes a convex mix of itself and another row of its batch, inputs and one-hot labels alike
(and their class weights), with lambda ~ Beta(alpha, alpha) a row. The layers above then learn to be linear
between photos, which the literature reports as smoother decisions under a change of source. In the fast mode
the rows are the cached pooled features (the head's stage) or activations at the cut (the fine-tuning stage),
so mixing is a transform of the batch before it is fed: the saved model and prediction are untouched.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# (inputs, one-hot labels, weights or None, the rows' indices, epoch) -> the same three, mixed
BatchMix = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray, int], tuple]


def mix_rows(inputs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, rng: np.random.Generator,
             alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Every row mixed with a random partner row of the batch: lambda * own + (1 - lambda) * partner's, for
    the inputs, the labels and the weights alike."""
    x = inputs.astype(np.float32)
    if len(x) < 2:
        return x, labels, weights
    partner = rng.permutation(len(x))
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    x_lam = lam.reshape(-1, *([1] * (x.ndim - 1)))
    mixed_x = x_lam * x + (1 - x_lam) * x[partner]
    mixed_y = lam[:, None] * labels + (1 - lam[:, None]) * labels[partner]
    mixed_w = None if weights is None else lam * weights + (1 - lam) * weights[partner]
    return mixed_x, mixed_y.astype(np.float32), mixed_w


def batch_mixer(alpha: float, seed: int) -> BatchMix | None:
    """A mix for keras_parts.ArrayBatches, drawn reproducibly from (seed, epoch, the batch's first row); None
    when alpha is 0."""
    if alpha <= 0:
        return None

    def mix(inputs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, idx: np.ndarray,
            epoch: int) -> tuple:
        rng = np.random.default_rng([seed, epoch, int(idx[0]) if len(idx) else 0, 11])
        return mix_rows(inputs, labels, weights, rng, alpha)

    return mix
