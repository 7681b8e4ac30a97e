"""The reference architecture: MobileNetV2 (ImageNet, frozen) -> GAP -> Dense(128, relu) -> Dense(n, softmax).

Preprocessing lives inside the model: it takes RGB pixels 0-255 (float32, 224x224) and scales them to
[-1, 1] itself (MobileNetV2's own preprocess_input), so every exported format and the app share one input
contract. Augmentation is a separate block used only while training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from trashure.config import BASE_WEIGHTS_PATH, CLASSES, IMAGE_SIZE, TrainConfig

FEATURE_DIM = 1280  # MobileNetV2's last feature map depth (alpha 1.0)
BASE_NAME = "mobilenetv2_1.00_224"


def build_base(weights_path: Path | None = BASE_WEIGHTS_PATH):
    """Frozen MobileNetV2 feature extractor (include_top=False); ImageNet weights from models/."""
    import keras

    from trashure.weights import load_base

    if weights_path is None:  # random weights: only for quick structural tests
        base = keras.applications.MobileNetV2(
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None)
        base.trainable = False
        return base
    return load_base(weights_path)


def build_augmenter(config: TrainConfig):
    """Random flip / rotation / brightness on 0-255 pixels; active only when training=True."""
    import keras
    from keras import layers

    steps = []
    if config.augment_flip:
        steps.append(layers.RandomFlip("horizontal", seed=config.seed))
    if config.augment_rotation_degrees > 0:
        steps.append(layers.RandomRotation(config.augment_rotation_degrees / 360.0, fill_mode="nearest",
                                           seed=config.seed))
    if config.augment_brightness > 0:
        steps.append(layers.RandomBrightness(config.augment_brightness, value_range=(0.0, 255.0),
                                             seed=config.seed))
    return keras.Sequential(steps, name="augmentation")


def head_layers(num_classes: int, dense_units: int = 128):
    from keras import layers

    return [layers.Dense(dense_units, activation="relu", name="dense_hidden"),
            layers.Dense(num_classes, activation="softmax", name="probabilities")]


def build_head(num_classes: int, dense_units: int = 128):
    """The trainable head alone, on pooled base features: what fast mode trains."""
    import keras

    features = keras.Input((FEATURE_DIM,), name="features")
    x = features
    for layer in head_layers(num_classes, dense_units):
        x = layer(x)
    return keras.Model(features, x, name="head")


def build_model(classes: Sequence[str] = CLASSES, dense_units: int = 128, base=None,
                weights_path: Path | None = BASE_WEIGHTS_PATH):
    """The full inference model: uint8-range RGB 224x224 in, class probabilities out."""
    import keras
    from keras import layers

    base = base if base is not None else build_base(weights_path)
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(image)  # [0, 255] -> [-1, 1]
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    for layer in head_layers(len(classes), dense_units):
        x = layer(x)
    return keras.Model(image, x, name="trashure_mobilenetv2")


def build_feature_extractor(model):
    """image (0-255) -> pooled 1280 features, sharing the model's layers (no copy)."""
    import keras

    return keras.Model(model.input, model.get_layer("pool").output, name="features")


def copy_head_weights(head, model) -> None:
    for name in ("dense_hidden", "probabilities"):
        model.get_layer(name).set_weights(head.get_layer(name).get_weights())


def compile_model(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
