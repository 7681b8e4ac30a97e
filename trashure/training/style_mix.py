"""MixStyle at the cut (Zhou et al., "Domain Generalization with MixStyle", ICLR 2021).

A photo's source shows in the channel statistics of its feature maps (their mean and spread over the
image: lighting, colour cast, board texture) more than in their layout. MixStyle trains the layers above
with each photo's statistics swapped part-way for another photo's of the same batch, so the features they
learn to read cannot lean on them. In the fast mode's fine-tuning stage the cached activations at the cut
are the unfrozen blocks' input, so MixStyle there is a transform of the batch before it is fed: nothing in
the saved model changes, and prediction is untouched.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BatchTransform = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
EPSILON = 1e-6


def mix_styles(activations: np.ndarray, rng: np.random.Generator, alpha: float = 0.1) -> np.ndarray:
    """activations (n, h, w, c) with each row's per-channel mean and standard deviation over (h, w) replaced
    by a mix of its own and another row's, weight lambda ~ Beta(alpha, alpha) a row (alpha 0.1: mostly near
    one of the two, as the paper)."""
    x = activations.astype(np.float32)
    if len(x) < 2:
        return x
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = np.sqrt(x.var(axis=(1, 2), keepdims=True) + EPSILON)
    partner = rng.permutation(len(x))
    weight = rng.beta(alpha, alpha, size=(len(x), 1, 1, 1)).astype(np.float32)
    mixed_mean = weight * mean + (1 - weight) * mean[partner]
    mixed_std = weight * std + (1 - weight) * std[partner]
    return (x - mean) / std * mixed_std + mixed_mean


def style_mixer(probability: float, seed: int, alpha: float = 0.1) -> BatchTransform | None:
    """A batch transform for keras_parts.ArrayBatches: a share `probability` of batches get mix_styles, drawn
    reproducibly from (seed, epoch, the batch's first row); None when probability is 0."""
    if probability <= 0:
        return None

    def transform(batch: np.ndarray, idx: np.ndarray, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([seed, epoch, int(idx[0]) if len(idx) else 0, 7])
        return mix_styles(batch, rng, alpha) if rng.random() < probability else batch

    return transform
