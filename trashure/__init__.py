"""Trashure: a waste-photo classifier (can, glass_bottle, other, plastic_bottle) and its studio.

Importing the package is cheap: TensorFlow loads only when a model is built, trained or run.
"""

import os

# TensorFlow's C++ start-up lines (among them "failed call to cuInit: CUDA error" on a machine without a GPU)
# read as failures to a user; real errors reach us as Python exceptions. TRASHURE_VERBOSE=1 (or the CLI's
# --verbose) brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("TRASHURE_VERBOSE") else "3")

from trashure.config import CLASSES, TrainConfig  # noqa: E402
from trashure.errors import TrashureError  # noqa: E402

__all__ = ["CLASSES", "TrainConfig", "TrashureError"]
__version__ = "0.1.0"
