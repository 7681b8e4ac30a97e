"""Looking twice: the close-up is the right part of the photo, and the model is the mean of its two passes."""

import numpy as np
import pytest
from scipy import ndimage

from trashure.config import CLASSES, TrainConfig
from trashure.glimpse import GlimpseCrop, MeanOfMirrored, Mirrored, has_glimpse, with_glimpse

OTHER = CLASSES.index("other")


def smooth_photo(n: int = 1, size: int = 448, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (n, size // 16, size // 16, 3))
    return np.stack([ndimage.zoom(p, (16, 16, 1), order=1) for p in noise]).astype(np.float32)


def cells_pointing_at(row: int, col: int, n: int = 1) -> np.ndarray:
    """Cell probabilities where every cell is background except (row, col)."""
    cells = np.zeros((n, 7, 7, len(CLASSES)), np.float32)
    cells[..., OTHER] = 0.9
    cells[..., 0] = 0.1
    cells[:, row, col, OTHER], cells[:, row, col, 0] = 0.2, 0.8
    return cells


def reference_crop(photo: np.ndarray, y0: float, x0: float, side: float, out: int = 224) -> np.ndarray:
    """Bilinear sampling of the square [y0, y0 + side] x [x0, x0 + side] (parts of the photo), by SciPy."""
    size = photo.shape[0]
    coords = np.clip((y0 * size + (np.arange(out) + 0.5) * side * size / out - 0.5), 0, size - 1)
    xs = np.clip((x0 * size + (np.arange(out) + 0.5) * side * size / out - 0.5), 0, size - 1)
    yy, xx = np.meshgrid(coords, xs, indexing="ij")
    return np.stack([ndimage.map_coordinates(photo[..., c], [yy, xx], order=1) for c in range(3)], axis=-1)


@pytest.mark.parametrize("row, col", [(3, 3), (1, 5), (0, 0), (6, 6)])
def test_the_close_up_is_centred_on_the_least_background_cell_and_stays_in_the_photo(row, col):
    photo, side = smooth_photo(), 0.55
    crop = np.asarray(GlimpseCrop(side, 224, OTHER)(photo, cells_pointing_at(row, col)))[0]
    y0 = float(np.clip((row + 0.5) / 7 - side / 2, 0, 1 - side))
    x0 = float(np.clip((col + 0.5) / 7 - side / 2, 0, 1 - side))
    np.testing.assert_allclose(crop, reference_crop(photo[0], y0, x0, side), atol=0.05)
    # A box one cell off would be another picture.
    shifted = reference_crop(photo[0], float(np.clip(y0 + 1 / 7, 0, 1 - side)), x0, side)
    if abs(np.clip(y0 + 1 / 7, 0, 1 - side) - y0) > 0.01:
        assert np.abs(crop - shifted).mean() > 5


def test_without_a_background_class_the_most_confident_cell_is_the_centre():
    photo = smooth_photo()
    cells = np.full((1, 7, 7, 3), 1 / 3, np.float32)
    cells[0, 5, 1] = [0.05, 0.9, 0.05]
    crop = np.asarray(GlimpseCrop(0.5, 224, None)(photo, cells))[0]
    y0, x0 = float(np.clip(5.5 / 7 - 0.25, 0, 0.5)), float(np.clip(1.5 / 7 - 0.25, 0, 0.5))
    np.testing.assert_allclose(crop, reference_crop(photo[0], y0, x0, 0.5), atol=0.05)


def sharp_model():
    """A Trashure model (ImageNet base) whose random head gives clearly different probabilities per photo."""
    import keras

    from trashure.model import build_model

    keras.utils.set_random_seed(3)
    model = build_model(CLASSES)
    for name in ("dense_hidden", "probabilities"):
        layer = model.get_layer(name)
        layer.set_weights([w * 1.5 for w in layer.get_weights()])
    return model


def test_the_two_pass_model_is_the_mean_of_the_whole_photo_and_the_close_up():
    import keras

    from trashure.model import BASE_NAME

    model = sharp_model()
    glimpse = with_glimpse(model, CLASSES, 0.55)
    assert glimpse.input_shape == (None, 448, 448, 3) and has_glimpse(glimpse) and not has_glimpse(model)
    photos = smooth_photo(2, seed=1)
    overview = photos.reshape(2, 224, 2, 224, 2, 3).mean(axis=(2, 4))
    whole = np.asarray(model(overview))
    feature_map = keras.Model(model.input, model.get_layer(BASE_NAME)(model.get_layer("preprocess")(model.input)))
    cells = model.get_layer("probabilities")(model.get_layer("dense_hidden")(feature_map(overview)))
    close_up = np.asarray(model(GlimpseCrop(0.55, 224, OTHER)(photos, cells)))
    expected = (whole + close_up) / 2
    assert np.abs(whole - close_up).max() > 0.05  # the two passes differ, so the mean is a real check
    np.testing.assert_allclose(np.asarray(glimpse(photos)), expected, atol=1e-5)


def test_the_mirrored_model_is_the_mean_of_the_photo_and_its_mirror_image():
    model = sharp_model()
    plain, mirrored = with_glimpse(model, CLASSES, 0.55), with_glimpse(model, CLASSES, 0.55, mirror=True)
    photos = smooth_photo(2, seed=5)
    photos[:, :, :150] *= 0.3  # the left third dark, so the mirror image is a different photo to the model
    once, flipped = np.asarray(plain(photos)), np.asarray(plain(photos[:, :, ::-1].copy()))
    assert np.abs(once - flipped).max() > 0.02
    np.testing.assert_allclose(np.asarray(mirrored(photos)), (once + flipped) / 2, atol=1e-5)


def test_mirroring_doubles_the_batch_and_halves_it_back_in_order():
    photos = np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1)
    both = np.asarray(Mirrored()(photos))
    np.testing.assert_array_equal(both, np.concatenate([photos, photos[:, :, ::-1]]))
    probabilities = np.array([[1.0, 0], [0, 1], [0, 0], [1, 1]], np.float32)  # photo 0, 1, then their mirrors
    np.testing.assert_allclose(np.asarray(MeanOfMirrored()(probabilities)), [[0.5, 0], [0.5, 1]])


def test_the_two_pass_model_saves_loads_and_runs_in_litert(tmp_path):
    from trashure.litert import LiteRTModel, to_tflite
    from trashure.prediction import load_keras_model

    glimpse = with_glimpse(sharp_model(), CLASSES, 0.55, mirror=True)
    photos = smooth_photo(3, seed=2)
    expected = np.asarray(glimpse(photos))
    path = tmp_path / "m.keras"
    glimpse.save(path)
    np.testing.assert_allclose(np.asarray(load_keras_model(path)(photos)), expected, atol=1e-6)
    lite = LiteRTModel(to_tflite(glimpse, signature=False))
    np.testing.assert_allclose(lite.run(photos), expected, atol=1e-4)


def test_looking_twice_is_trashures_default_and_not_the_notebooks():
    assert TrainConfig().glimpse_side == 0.5 and TrainConfig().model_input_size == 448 and TrainConfig().glimpse_mirror
    exact = TrainConfig.for_mode("exact")
    assert exact.glimpse_side == 0 and exact.model_input_size == 224 and not exact.glimpse_mirror
    # A model trained before the option existed took one look; one saved before the mirror, no mirror image.
    assert TrainConfig.from_dict({"mode": "fast", "seed": 1}).glimpse_side == 0
    assert not TrainConfig.from_dict({"mode": "fast", "seed": 1, "glimpse_side": 0.5}).glimpse_mirror
    with pytest.raises(ValueError, match="glimpse_side"):
        TrainConfig(glimpse_side=1.5)


def test_tied_cells_share_the_centre():
    """A confident object covers several cells whose background probability is exactly 0: the close-up is centred
    on their middle (one crop), not on the first of them and not a blend of several crops."""
    photo = smooth_photo(seed=4)
    cells = cells_pointing_at(2, 1)
    cells[0, 2, 1:4, OTHER], cells[0, 2, 1:4, 0] = 0.0, 1.0  # row 2, columns 1 to 3 tie
    crop = np.asarray(GlimpseCrop(0.5, 224, OTHER)(photo, cells))[0]
    y0, x0 = float(np.clip(2.5 / 7 - 0.25, 0, 0.5)), float(np.clip(2.5 / 7 - 0.25, 0, 0.5))
    np.testing.assert_allclose(crop, reference_crop(photo[0], y0, x0, 0.5), atol=0.05)


def test_the_nearest_half_cell_is_exact_for_every_mean_of_up_to_49_cells():
    """Every mean of n <= 49 tied cells (row indices summing to `total`) picks the half-cell nearest it, and both
    neighbours, equally, exactly half-way: in integers, so no runtime's rounding can move it either way (a float
    mean rounded a little either side of 3.75 moved the close-up of two test photos in TFLite)."""
    from fractions import Fraction

    counts, totals = zip(*[(n, t) for n in range(1, 50) for t in range(0, 6 * n + 1)])
    picks = np.asarray(GlimpseCrop._nearest_half_cell(np.array(totals, np.int32), np.array(counts, np.int32), 7))
    expected = np.zeros_like(picks)
    for i, (n, t) in enumerate(zip(counts, totals)):
        near = [k for k in range(13) if abs(Fraction(2 * t, n) - k) <= Fraction(1, 2)]
        expected[i, near] = 1 / len(near)
    np.testing.assert_array_equal(picks, expected)
    assert (expected == 0.5).any(axis=1).sum() > 100  # the half-way cases are among them


def random_tied_cells(n: int, seed: int) -> np.ndarray:
    """Cell probabilities with 1-20 cells (a blob or scattered) certain of `can`, the rest mostly background."""
    rng = np.random.default_rng(seed)
    cells = np.zeros((n, 7, 7, len(CLASSES)), np.float32)
    cells[..., OTHER] = rng.uniform(0.3, 1.0, (n, 7, 7))
    cells[..., 0] = 1 - cells[..., OTHER]
    for i in range(n):
        tied = rng.choice(49, rng.integers(1, 21), replace=False)
        cells[i].reshape(49, -1)[tied] = [1.0, 0.0, 0.0, 0.0]
    return cells


# TensorFlow's own int8 calibrator still runs on tf.lite.Interpreter and warns about it; the test runs LiteRT's.
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_an_int8_close_up_lands_where_the_float_close_up_does(tmp_path):
    """Full-integer quantisation must not move the close-up: given the same tied cells (1 to 20 of them, which
    8-bit probabilities keep), the int8 crop is the float crop up to its 8-bit rounding. An 8-bit mean of the
    tied cells, whose normalised weights summed over 1 (1.06 on a real photo), put it half a cell further on."""
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    photo_in, cells_in = keras.Input((448, 448, 3), name="photo"), keras.Input((7, 7, len(CLASSES)), name="cells")
    crop = keras.Model([photo_in, cells_in], GlimpseCrop(0.5, 224, OTHER)(photo_in, cells_in))
    photos, calibration = smooth_photo(4, seed=6), random_tied_cells(20, seed=7)
    crop.export(str(tmp_path / "crop"), format="tf_saved_model", verbose=False)  # the export's own path
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "crop"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ({"photo": photos[i % 4:i % 4 + 1], "cells": calibration[i:i + 1]}
                                                 for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    run = Interpreter(model_content=converter.convert()).get_signature_runner()
    inputs = run.get_input_details()

    def quantised(name, values):
        scale, zero = inputs[name]["quantization"]
        return np.clip(np.round(values / scale + zero), 0, 255).astype(np.uint8)

    cells = random_tied_cells(60, seed=8)
    errors = []
    for i in range(len(cells)):
        photo, cell = photos[i % 4:i % 4 + 1], cells[i:i + 1]
        expected = np.asarray(crop([photo, cell]))
        got = run(photo=quantised("photo", photo), cells=quantised("cells", cell))["output_0"]
        errors.append(np.abs(got - expected).mean())
    assert max(errors) < 2, f"{sum(e >= 2 for e in errors)} of {len(errors)} int8 close-ups moved"
