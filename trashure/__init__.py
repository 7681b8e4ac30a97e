"""Trashure: a waste-photo classifier (can, glass_bottle, other, plastic_bottle) and its studio.

Importing the package is cheap: TensorFlow loads only when a model is built, trained or run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal

from trashure.config import CLASSES, TrainConfig  # noqa: E402
from trashure.errors import TrashureError  # noqa: E402

__all__ = ["CLASSES", "TrainConfig", "TrashureError"]
__version__ = "0.1.0"
