"""Look twice: classify the whole photo, then a close-up of where the object is, and average the two.

Everyday photos often show litter small in the frame (a can on a carpet, 5-15% of the photo wide): at 224x224
the object covers one or two of MobileNetV2's 7x7 cells and the average over all 49 is mostly floor. The model
itself says where to look: its head, applied to each cell of the base's last feature map instead of to their
average, gives every cell class probabilities, and the cell least likely to be background (`other`) is where
the object is. The model then crops a square around that cell, `side` of the photo wide, classifies the crop
too, and returns the mean of the two passes' probabilities.

The crop comes from a photo twice as sharp as the first pass sees (the model takes 448x448 and averages 2x2
pixels for the overview), so a close-up of half the frame needs no upsampling: cropped from the 224x224 view
instead, the same recipe gained a third as much across sources (docs/experiments.md). Everything is in the
Keras graph with standard operations (average pooling, a maximum, integer sums, matrix products), so every
exported format runs the same two passes from one input. Where to crop is decided in integers, so an int8 model
crops where Keras does whenever its cell probabilities tie the same cells.

With `mirror`, the model also looks at the photo's mirror image (both passes; its close-up is centred where the
mirrored cells point) and averages the four: the mean of five split seeds across sources went from 69.16% to
70.00%, as good or better on four of the five (docs/experiments.md), for twice the arithmetic. The mirror
image travels in the batch (2b photos through one base), so no layer or weight is stored twice.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

GLIMPSE_LAYER = "glimpse"
MIRROR_LAYER = "mirror"
TIE = 1 / 64  # cells whose score is this close to the best share the centre
BACKGROUND_CLASS = "other"


@keras.saving.register_keras_serializable(package="trashure")
class GlimpseCrop(layers.Layer):
    """(photo (b, S, S, 3), cell probabilities (b, g, g, n)) -> a (b, out, out, 3) crop of the photo, `side` of
    it wide, centred on the cell least likely to be the background class (or, with no background class, the
    most confident cell) and kept inside the photo. Bilinear resampling as two matrix products of hat-function
    weights, so that TFLite and TF.js run it with their built-in operations."""

    def __init__(self, side: float = 0.55, output_size: int = 224, background_index: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < side <= 1:
            raise ValueError(f"side must be in (0, 1], not {side}")
        self.side, self.output_size, self.background_index = float(side), int(output_size), background_index

    def _tied_cells(self, cells):
        """(b, g, g) int32: 1 on the cells to look at (within TIE of the best score), 0 elsewhere. A confident
        object covers several cells whose background probability is exactly 0; they share the centre."""
        if self.background_index is None:
            score = ops.max(cells, axis=-1)
        else:
            score = 1.0 - cells[..., self.background_index]
        # A mask, not an argmax (Keras' argmax brings an operation TFLite lacks); TIE because an int8 model's
        # probabilities are steps of 1/256, so an exact maximum would choose other cells there.
        return ops.cast(ops.greater_equal(score, ops.max(score, axis=(1, 2), keepdims=True) - TIE), "int32")

    def _axis_picks(self, tied):
        """((b, 2g - 1), (b, 2g - 1)): for rows, then columns, the weight of each half-cell of the table: 1 on the
        half-cell nearest the tied cells' mean, 1/2 on each of two when the mean is exactly half-way between."""
        grid = tied.shape[1]
        count = ops.sum(tied, axis=(1, 2))
        index = ops.arange(grid, dtype="int32")
        rows = ops.sum(ops.sum(tied, axis=2) * index, axis=1)
        cols = ops.sum(ops.sum(tied, axis=1) * index, axis=1)
        return self._nearest_half_cell(rows, count, grid), self._nearest_half_cell(cols, count, grid)

    @staticmethod
    def _nearest_half_cell(total, count, grid: int):
        """Half-cell k is nearest the mean total / count when |2 total / count - k| <= 1/2, that is when
        |4 total - 2k count| <= count: in integers, exact in every runtime, so that an int8 model picks what
        Keras picks. An 8-bit mean (normalised weights whose roundings summed to 1.06 on one photo) cropped
        elsewhere than Keras on 64 of 96 test looks of a model, against 31 now, all from other tied cells
        (docs/experiments.md)."""
        half_cells, count = ops.arange(2 * grid - 1, dtype="int32"), ops.expand_dims(count, 1)
        gap = ops.abs(4 * ops.expand_dims(total, 1) - 2 * half_cells * count)
        # Twice the weights, so that every row sums to 2 whatever it picks: an int8 model whose calibration saw no
        # mean exactly half-way would clip a sum of the picks at 1 and double the close-up's brightness.
        twice = 2 * ops.cast(ops.less(gap, count), "int32") + ops.cast(ops.equal(gap, count), "int32")
        return 0.5 * ops.cast(twice, "float32")

    def sampling_table(self, size: int, grid: int) -> np.ndarray:
        """(2 * grid - 1, out, size) bilinear weights: row k samples `side` of an axis of `size` pixels centred on
        k / 2 cells (every cell and every half-way point), kept inside the photo. A constant, so that an int8
        model quantises weights in [0, 1], never pixel coordinates up to 447 (quantised, a coordinate is off by
        up to a pixel and a half, and bilinear weights of it are noise)."""
        centres = (np.arange(2 * grid - 1) / 2 + 0.5) / grid
        starts = np.clip(centres - self.side / 2, 0.0, 1.0 - self.side)
        out = np.arange(self.output_size)
        source = starts[:, None] * size + (out[None, :] + 0.5) * self.side * size / self.output_size - 0.5
        source = np.clip(source, 0.0, size - 1.0)
        return np.maximum(0.0, 1.0 - np.abs(source[..., None] - np.arange(size))).astype(np.float32)

    def call(self, photo, cells):
        size, grid, n = photo.shape[1], cells.shape[1], self.output_size
        table = self.sampling_table(size, grid)
        table = ops.convert_to_tensor(table.reshape(len(table), n * size))
        pick_y, pick_x = self._axis_picks(self._tied_cells(cells))
        wy = ops.reshape(ops.matmul(pick_y, table), (-1, n, size))
        wx = ops.reshape(ops.matmul(pick_x, table), (-1, n, size))
        # rows: (b, out, S) @ (b, S, S*3) -> (b, out, S, 3); then columns on the transposed result.
        rows = ops.reshape(ops.matmul(wy, ops.reshape(photo, (-1, size, size * 3))), (-1, n, size, 3))
        cols = ops.matmul(ops.reshape(ops.transpose(rows, (0, 1, 3, 2)), (-1, n * 3, size)),
                          ops.transpose(wx, (0, 2, 1)))
        return ops.transpose(ops.reshape(cols, (-1, n, 3, n)), (0, 1, 3, 2))

    def compute_output_shape(self, photo_shape, cells_shape=None):
        return (photo_shape[0], self.output_size, self.output_size, photo_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "side": self.side, "output_size": self.output_size,
                "background_index": self.background_index}


@keras.saving.register_keras_serializable(package="trashure")
class Mirrored(layers.Layer):
    """(b, h, w, c) photos -> (2b, h, w, c): the photos, then their left-right mirror images."""

    def call(self, photos):
        return ops.concatenate([photos, ops.flip(photos, axis=2)], axis=0)

    def compute_output_shape(self, shape):
        return (None if shape[0] is None else 2 * shape[0], *shape[1:])


@keras.saving.register_keras_serializable(package="trashure")
class MeanOfMirrored(layers.Layer):
    """(2b, n) probabilities of Mirrored's batch -> (b, n): each photo's mean with its mirror image's."""

    def call(self, probabilities):
        return ops.mean(ops.reshape(probabilities, (2, -1, probabilities.shape[-1])), axis=0)

    def compute_output_shape(self, shape):
        return (None if shape[0] is None else shape[0] // 2, shape[1])


def with_glimpse(model: keras.Model, classes: Sequence[str], side: float, mirror: bool = False) -> keras.Model:
    """The two-pass model around a trained single-pass Trashure model (sharing its layers and weights): it
    takes photos at twice the model's size and returns the mean of the whole photo's probabilities and the
    close-up's (with `mirror`, the mean of those of the photo and of its mirror image)."""
    from trashure.model import BASE_NAME

    size = int(model.input_shape[1])
    preprocess, base = model.get_layer("preprocess"), model.get_layer(BASE_NAME)
    pool, hidden, probabilities = (model.get_layer(n) for n in ("pool", "dense_hidden", "probabilities"))

    def classify(pixels):
        return probabilities(hidden(pool(base(preprocess(pixels), training=False))))

    image = keras.Input((2 * size, 2 * size, 3), name="image")
    photo = Mirrored(name=MIRROR_LAYER)(image) if mirror else image
    overview = layers.AveragePooling2D(2, name="overview")(photo)
    features = base(preprocess(overview), training=False)
    whole = probabilities(hidden(pool(features)))
    cells = probabilities(hidden(features))  # the head on each cell of the 7x7 map
    background = list(classes).index(BACKGROUND_CLASS) if BACKGROUND_CLASS in classes else None
    close_up = GlimpseCrop(side, size, background, name=GLIMPSE_LAYER)(photo, cells)
    mean = layers.Average(name="look_twice")([whole, classify(close_up)])
    if mirror:
        mean = MeanOfMirrored(name="mean_of_mirrored")(mean)
    return keras.Model(image, mean, name=f"{model.name}_glimpse")


def has_glimpse(model: keras.Model) -> bool:
    return any(layer.name == GLIMPSE_LAYER for layer in model.layers)
