import numpy as np
import pytest

from trashure.config import BASE_WEIGHTS_PATH, CLASSES, TrainConfig
from trashure.model import build_augmenter, build_feature_extractor, build_head, build_model


@pytest.fixture(scope="module")
def model():
    return build_model(CLASSES)


def test_reference_architecture(model):
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 4)
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["pool", "dense_hidden", "probabilities"]
    assert model.get_layer("dense_hidden").units == 128
    assert model.get_layer("dense_hidden").activation.__name__ == "relu"
    assert model.get_layer("probabilities").activation.__name__ == "softmax"
    assert not any("random" in n for n in names), "augmentation must not be part of the inference model"


def test_base_is_frozen_and_only_the_head_trains(model):
    base = model.get_layer("mobilenetv2_1.00_224")
    assert base.trainable is False
    assert all(not w.trainable for w in base.weights)
    trainable = {w.path for w in model.trainable_weights}
    assert trainable == {"dense_hidden/kernel", "dense_hidden/bias", "probabilities/kernel", "probabilities/bias"}


def test_preprocessing_is_inside_the_model(model):
    # The model takes 0-255 pixels and scales them itself, as mobilenet_v2.preprocess_input does.
    import keras

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    base = model.get_layer("mobilenetv2_1.00_224")
    expected = np.asarray(base(keras.applications.mobilenet_v2.preprocess_input(pixels.copy()))).mean(axis=(1, 2))
    features = np.asarray(build_feature_extractor(model)(pixels))
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    probs = np.asarray(model(pixels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_base_has_the_committed_imagenet_weights(model):
    from trashure.weights import load_base

    committed = load_base(BASE_WEIGHTS_PATH)
    base = model.get_layer("mobilenetv2_1.00_224")
    assert len(base.weights) == len(committed.weights) == 260
    for a, b in zip(base.weights, committed.weights):  # every array, BatchNorm statistics included
        assert a.path == b.path
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # ImageNet BN statistics are far from the fresh-initialisation values (mean 0, variance 1).
    moving_var = np.asarray(base.get_layer("bn_Conv1").moving_variance)
    assert not np.allclose(moving_var, 1.0)


def test_augmentation_acts_only_in_training():
    aug = build_augmenter(TrainConfig(seed=1))
    x = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    assert not np.allclose(np.asarray(aug(x, training=True)), x)


def test_augmentation_is_the_recipes_flip_rotation_and_brightness():
    """Horizontal flips only, rotations within ±20°, brightness within ±20% of the 0-255 range."""
    from keras import layers

    flip, rotation, brightness = build_augmenter(TrainConfig(seed=1)).layers
    assert isinstance(flip, layers.RandomFlip) and flip.mode == "horizontal"
    assert isinstance(rotation, layers.RandomRotation) and rotation.factor == (-20 / 360, 20 / 360)
    assert isinstance(brightness, layers.RandomBrightness) and brightness.factor == (-0.2, 0.2)
    assert tuple(brightness.value_range) == (0.0, 255.0)
    # Behaviour, not only settings: a flip never turns a photo upside down, and brightness shifts a
    # grey photo by at most 20% of 255.
    stripe = np.zeros((1, 16, 16, 3), np.float32)
    stripe[:, :4] = 255.0  # a bright top band
    for seed in range(20):
        out = np.asarray(layers.RandomFlip("horizontal", seed=seed)(stripe, training=True))
        assert out[0, :4].mean() == 255.0 and out[0, 4:].mean() == 0.0
    grey = np.full((64, 8, 8, 3), 128.0, np.float32)
    shifted = np.asarray(brightness(grey, training=True))
    assert np.abs(shifted - 128.0).max() <= 0.2 * 255 + 1e-3 and np.abs(shifted - 128.0).max() > 10


def test_head_alone_matches_the_full_model_head():
    """The head trained on cached features, copied into the full model, gives the full model's output."""
    from trashure.model import copy_head_weights

    model = build_model(CLASSES)
    head = build_head(len(CLASSES))
    assert head.input_shape == (None, 1280) and head.output_shape == (None, 4)
    rng = np.random.default_rng(3)
    for layer in head.layers[1:]:  # weights unlike the model's fresh ones
        layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in layer.get_weights()])
    copy_head_weights(head, model)
    pixels = rng.integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    features = np.asarray(build_feature_extractor(model)(pixels))
    np.testing.assert_allclose(np.asarray(head(features)), np.asarray(model(pixels)), atol=1e-5)


def test_head_dropout_drops_in_training_only():
    """head_dropout adds a Dropout before the hidden layer of the head, the full model and the cut classifier;
    at prediction it is the identity, so the model gives what the same weights give without it."""
    from trashure.model import classifier_from_cut, copy_head_weights, split_at_cut

    head = build_head(len(CLASSES), dropout=0.5)
    assert [layer.name for layer in head.layers[1:]] == ["head_dropout", "dense_hidden", "probabilities"]
    features = np.random.default_rng(5).normal(1.0, 0.5, (16, 1280)).astype(np.float32)
    assert not np.allclose(np.asarray(head(features, training=True)), np.asarray(head(features)), atol=1e-4)
    plain = build_head(len(CLASSES))
    copy_head_weights(head, plain)
    np.testing.assert_allclose(np.asarray(head(features)), np.asarray(plain(features)), atol=1e-6)
    model = build_model(CLASSES, dropout=0.5)
    classifier = classifier_from_cut(model, split_at_cut(model, 1)[1])
    assert "head_dropout" in [layer.name for layer in classifier.layers]
    assert "head_dropout" not in [layer.name for layer in build_model(CLASSES).layers]
    assert TrainConfig().head_dropout == 0 and TrainConfig.for_mode("exact").head_dropout == 0  # the notebook's head
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="head_dropout"):
            TrainConfig(head_dropout=bad)


@pytest.mark.slow
@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_cut_composition_equals_the_full_model(blocks):
    """Fast fine-tuning trains on activations at the cut: bottom then top must be the whole model."""
    from trashure.model import classifier_from_cut, split_at_cut

    model = build_model(CLASSES)
    bottom, top = split_at_cut(model, blocks)
    pixels = np.random.default_rng(blocks).integers(0, 256, (3, 224, 224, 3)).astype(np.float32)
    composed = np.asarray(classifier_from_cut(model, top)(bottom(pixels)))
    np.testing.assert_allclose(composed, np.asarray(model(pixels)), atol=1e-4)
    np.testing.assert_allclose(np.asarray(top(bottom(pixels))), np.asarray(build_feature_extractor(model)(pixels)),
                               atol=1e-4)
    assert bottom.output_shape[1:] == top.input_shape[1:]


@pytest.mark.slow
def test_fine_tuning_changes_the_unfrozen_weights_only():
    """Stage 2 trains the convolutions of the top blocks and the head; everything below the cut, and every
    BatchNorm statistic (inference mode), stays bit for bit."""
    from trashure.model import base_of, classifier_from_cut, compile_model, cut_layer, split_at_cut, unfreeze_top

    model = build_model(CLASSES)
    base = base_of(model)
    before = {w.path: np.asarray(w).copy() for w in model.weights}
    trainable = set(unfreeze_top(model, 2))
    assert trainable == {"block_15_expand", "block_15_depthwise", "block_15_project", "block_16_expand",
                         "block_16_depthwise", "block_16_project", "Conv_1"}
    bottom, top = split_at_cut(model, 2)
    classifier = classifier_from_cut(model, top)
    compile_model(classifier, 1e-3)
    rng = np.random.default_rng(0)
    activations = np.asarray(bottom(rng.integers(0, 256, (8, 224, 224, 3)).astype(np.float32)))
    classifier.fit(activations, np.eye(4)[rng.integers(0, 4, 8)], epochs=2, batch_size=4, verbose=0)
    cut_index = [layer.name for layer in base.layers].index(cut_layer(model, 2))
    changed = {w.path for w in model.weights if not np.array_equal(np.asarray(w), before[w.path])}
    owner = {w.path: layer.name for layer in base.layers for w in layer.weights}
    changed_base = {owner[p] for p in changed if p in owner}
    assert changed_base == trainable  # every unfrozen layer moved, nothing else in the base
    assert {"dense_hidden/kernel", "probabilities/kernel"} <= changed
    frozen = [layer for i, layer in enumerate(base.layers) if i <= cut_index]
    assert frozen and not any(w.path in changed for layer in frozen for w in layer.weights)
