"""The reference architecture: MobileNetV2 (ImageNet, frozen) -> GAP -> Dense(128, relu) -> Dense(n, softmax).

Preprocessing lives inside the model: it takes RGB pixels 0-255 (float32, 224x224) and scales them to
[-1, 1] itself (MobileNetV2's own preprocess_input), so every exported format and the app share one input
contract. Augmentation is a separate block used only while training.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from trashure.config import BASE_WEIGHTS_PATH, CLASSES, IMAGE_SIZE, TrainConfig

if TYPE_CHECKING:  # keras loads lazily: importing this module stays cheap
    import keras

FEATURE_DIM = 1280  # MobileNetV2's last feature map depth (alpha 1.0)
BASE_NAME = "mobilenetv2_1.00_224"


def build_base(weights_path: Path | None = BASE_WEIGHTS_PATH) -> keras.Model:
    """Frozen MobileNetV2 feature extractor (include_top=False); ImageNet weights from models/."""
    import keras

    from trashure.weights import load_base

    if weights_path is None:  # random weights: only for quick structural tests
        base = keras.applications.MobileNetV2(
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None)
        base.trainable = False
        return base
    return load_base(weights_path)


def build_augmenter(config: TrainConfig) -> keras.Sequential:
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


def head_layers(num_classes: int, dense_units: int = 128, dropout: float = 0.0) -> list[keras.layers.Layer]:
    """Dense(relu) -> Dense(softmax), after a Dropout of the pooled features when `dropout` > 0 (the Keras
    transfer-learning guide's head; it drops nothing at prediction, so every exported format is unchanged)."""
    from keras import layers

    dropped = [layers.Dropout(dropout, name="head_dropout")] if dropout > 0 else []
    return dropped + [layers.Dense(dense_units, activation="relu", name="dense_hidden"),
                      layers.Dense(num_classes, activation="softmax", name="probabilities")]


def build_head(num_classes: int, dense_units: int = 128, dropout: float = 0.0) -> keras.Model:
    """The trainable head alone, on pooled base features: what fast mode trains."""
    import keras

    features = keras.Input((FEATURE_DIM,), name="features")
    x = features
    for layer in head_layers(num_classes, dense_units, dropout):
        x = layer(x)
    return keras.Model(features, x, name="head")


def build_model(classes: Sequence[str] = CLASSES, dense_units: int = 128, base: keras.Model | None = None,
                weights_path: Path | None = BASE_WEIGHTS_PATH, dropout: float = 0.0) -> keras.Model:
    """The full inference model: uint8-range RGB 224x224 in, class probabilities out."""
    import keras
    from keras import layers

    base = base if base is not None else build_base(weights_path)
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(image)  # [0, 255] -> [-1, 1]
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    for layer in head_layers(len(classes), dense_units, dropout):
        x = layer(x)
    return keras.Model(image, x, name="trashure_mobilenetv2")


def build_feature_extractor(model: keras.Model) -> keras.Model:
    """image (0-255) -> pooled 1280 features, sharing the model's layers (no copy)."""
    import keras

    return keras.Model(model.input, model.get_layer("pool").output, name="features")


def copy_head_weights(head: keras.Model, model: keras.Model) -> None:
    for name in ("dense_hidden", "probabilities"):
        model.get_layer(name).set_weights(head.get_layer(name).get_weights())


def compile_model(model: keras.Model, learning_rate: float, steps_per_execution: int = 1) -> None:
    """Adam, categorical cross-entropy, accuracy. steps_per_execution > 1 runs that many batches in one
    call of the compiled step: the same updates, less Python per batch (what a small head on cached
    features spends most of its time on)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"], steps_per_execution=steps_per_execution)


def base_of(model: keras.Model) -> keras.Model:
    """The MobileNetV2 base nested in a Trashure model."""
    return model.get_layer(BASE_NAME)


def block_input_layer(base: keras.Model, block: int) -> str:
    """Name of the layer whose output feeds MobileNetV2's inverted-residual block `block` (1..16)."""
    names = {layer.name for layer in base.layers}
    previous = block - 1
    if previous == 0:
        return "expanded_conv_project_BN"
    return f"block_{previous}_add" if f"block_{previous}_add" in names else f"block_{previous}_project_BN"


def cut_layer(model: keras.Model, fine_tune_blocks: int) -> str:
    """Where the frozen part ends when the top `fine_tune_blocks` blocks (and the last 1x1 conv) train."""
    return block_input_layer(base_of(model), 17 - fine_tune_blocks)


def split_at_cut(model: keras.Model, fine_tune_blocks: int) -> tuple[keras.Model, keras.Model]:
    """(bottom, top): bottom takes the model's input (0-255 pixels) to the activations at the cut;
    top takes those activations to the pooled features. top(bottom(x)) equals the feature extractor.
    Both share the model's layers (no copy), so training top trains the model."""
    import keras

    base = base_of(model)
    cut = base.get_layer(cut_layer(model, fine_tune_blocks)).output
    frozen = keras.Model(base.input, cut, name="base_bottom")
    image = keras.Input(model.input_shape[1:], name="image")
    bottom = keras.Model(image, frozen(model.get_layer("preprocess")(image), training=False), name="bottom")
    upper = keras.Model(cut, base.output, name="base_top")
    activations = keras.Input(tuple(cut.shape[1:]), name="cut_activations")
    pooled = model.get_layer("pool")(upper(activations, training=False))
    return bottom, keras.Model(activations, pooled, name="top")


def classifier_from_cut(model: keras.Model, top: keras.Model) -> keras.Model:
    """cut activations -> class probabilities, through top and the model's own head layers."""
    import keras

    x = top.output
    after_pool = [layer.name for layer in model.layers].index("pool") + 1
    for layer in model.layers[after_pool:]:  # the head, whichever layers head_layers gave it
        x = layer(x)
    return keras.Model(top.input, x, name="cut_classifier")


def unfreeze_top(model: keras.Model, fine_tune_blocks: int) -> list[str]:
    """Make the convolutions above the cut trainable, everything else frozen; returns the names of the
    trainable base layers. BatchNorm layers stay frozen, which in Keras 3 also keeps them in inference
    mode: a Functional model passes the outer `training=True` of fit() down to every layer, overriding
    the `training=False` of the base's call, so that alone would not protect their moving statistics
    (batches of one class-weighted mix would replace ImageNet's)."""
    from keras import layers

    base = base_of(model)
    first = [layer.name for layer in base.layers].index(cut_layer(model, fine_tune_blocks)) + 1
    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= first and not isinstance(layer, layers.BatchNormalization)
    return [layer.name for layer in base.layers[first:] if layer.trainable and layer.weights]
