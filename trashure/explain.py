"""Why the model said what it said: Grad-CAM heat maps over MobileNetV2's last convolutional block.

Grad-CAM (Selvaraju et al., 2017) weighs each of the 1280 feature maps of the last convolution (7x7 for a
224x224 photo) by how much the predicted class's probability changes with it, keeps the positive part and
scales it up to the photo. Computed only when asked: the plain verdict never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trashure.images import ImageSource, load_array, open_image, to_rgb


@dataclass
class Explanation:
    label: str
    confidence: float
    heatmap: np.ndarray  # (7, 7) float32 in [0, 1]: where the evidence for `label` is
    overlay: Image.Image  # the photo (its own aspect) with the heat map laid over it


def colour_map(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8 on a perceptual dark-blue → yellow scale (viridis' end points and middle)."""
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float32)
    position = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    frac = (position - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def overlay(photo: Image.Image, heatmap: np.ndarray, strength: float = 0.45, width: int = 480) -> Image.Image:
    """The heat map, scaled smoothly to the photo, blended over it."""
    picture = to_rgb(photo).copy()
    picture.thumbnail((width, width))
    heat = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8)).resize(picture.size, Image.BICUBIC)
    coloured = Image.fromarray(colour_map(np.asarray(heat, np.float32) / 255))
    return Image.blend(picture, coloured, strength)


class Explainer:
    """Grad-CAM for a Trashure .keras model: explain() takes a path, bytes or a PIL image."""

    def __init__(self, model_path: str | Path, classes: tuple[str, ...] | None = None) -> None:
        import tensorflow as tf

        from trashure.glimpse import MIRROR_LAYER
        from trashure.model import BASE_NAME
        from trashure.prediction import load_model_and_card

        self.model, _card, self.classes = load_model_and_card(model_path, classes)
        self.image_size = int(self.model.input_shape[1])
        names = [layer.name for layer in self.model.layers]
        if BASE_NAME not in names or "pool" not in names:
            from trashure.errors import ModelLoadError

            raise ModelLoadError(f"{model_path} is not a Trashure MobileNetV2 model: no heat map can be made")
        self._base = self.model.get_layer(BASE_NAME)
        # The layers before the base (the overview's 2x2 average of a two-pass model, the scaling) and the head
        # after it: the heat map is the whole photo's pass. Its class is the model's answer (both passes).
        # A model that also looks at the mirror image doubles the batch there; the heat map is of the photo itself.
        before = [self.model.get_layer(n) for n in names[1:names.index(BASE_NAME)] if n != MIRROR_LAYER]
        head = [self.model.get_layer(n) for n in ("pool", "dense_hidden", "probabilities")]

        def forward(image):
            answer = self.model(image, training=False)[0]
            k = tf.argmax(answer)
            x = image
            for layer in before:
                x = layer(x)
            features = self._base(x, training=False)
            with tf.GradientTape() as tape:
                tape.watch(features)
                y = features
                for layer in head:
                    y = layer(y)
                score = y[0, k]
            grads = tape.gradient(score, features)[0]
            weights = tf.reduce_mean(grads, axis=(0, 1))
            cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1))
            return answer, cam / (tf.reduce_max(cam) + 1e-8)

        self._forward = tf.function(forward, reduce_retracing=True)

    def explain(self, source: ImageSource) -> Explanation:
        photo = open_image(source)
        pixels = load_array(photo, self.image_size)[None].astype(np.float32)
        probs, cam = (np.asarray(t) for t in self._forward(pixels))
        k = int(np.argmax(probs))
        return Explanation(self.classes[k], float(probs[k]), cam.astype(np.float32), overlay(photo, cam))
