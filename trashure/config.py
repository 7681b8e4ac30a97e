"""One place for Trashure's settings: classes, paths and the training recipe."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLASSES: tuple[str, ...] = ("can", "glass_bottle", "other", "plastic_bottle")
IMAGE_SIZE: int = 224
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MODEL_PATH = MODELS_DIR / "mobilenetv2_trashure.keras"
BASE_WEIGHTS_PATH = MODELS_DIR / "mobilenetv2_imagenet_notop.weights.h5"
MODEL_FILENAME = "mobilenetv2_trashure.keras"
TFJS_TOOL_DIR = REPO_ROOT / "tools" / "tfjs"  # the TF.js converter venv and the Node runtime


def default_runs_dir() -> Path:
    return Path(os.environ.get("TRASHURE_RUNS", REPO_ROOT / "runs"))


def default_cache_dir() -> Path:
    """Derived artefacts that are safe to delete (e.g. the TFLite conversion of the frozen base)."""
    if os.environ.get("TRASHURE_CACHE"):
        return Path(os.environ["TRASHURE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trashure"


def default_data_dir() -> Path | None:
    """The data folder from TRASHURE_DATA, else the shared TrashNet copy beside the repo, else None."""
    env = os.environ.get("TRASHURE_DATA")
    if env:
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "data" / "trashnet4"
    return shared if shared.is_dir() else None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved as the run's config.json.

    The defaults are the reference recipe (Adam 1e-4, <=20 epochs, EarlyStopping on val_loss with
    patience 3 restoring the best weights, checkpoint on best val_accuracy, 80/10/10 split).
    """

    mode: str = "fast"  # "fast": cached base features; "exact": the notebook's loop verbatim
    epochs: int = 20
    learning_rate: float = 1e-4
    batch_size: int = 32
    patience: int = 3
    seed: int = 42
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    augment_flip: bool = True
    augment_rotation_degrees: float = 20.0  # random rotation within +/- this many degrees
    augment_brightness: float = 0.2  # random brightness shift within +/- this fraction of 0-255
    augmented_views: int = 2  # fast mode: augmented copies of each training photo, besides the clean one
    dense_units: int = 128
    classes: tuple[str, ...] = CLASSES
    image_size: int = IMAGE_SIZE
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("fast", "exact"):
            raise ValueError(f"mode must be 'fast' or 'exact', not {self.mode!r}")
        if self.epochs < 1:
            raise ValueError("epochs must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.patience < 0:
            raise ValueError("patience must be 0 or more")
        if self.augmented_views < 0:
            raise ValueError("augmented_views must be 0 or more")
        if not 0 < self.learning_rate < 1:
            raise ValueError("learning_rate must be between 0 and 1")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError("val_fraction + test_fraction must be below 1")
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def augments(self) -> bool:
        return self.augment_flip or self.augment_rotation_degrees > 0 or self.augment_brightness > 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
