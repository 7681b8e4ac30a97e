"""One place for Trashure's settings: classes, paths and the training recipe."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLASSES: tuple[str, ...] = ("can", "glass_bottle", "other", "plastic_bottle")
IMAGE_SIZE: int = 224
CLASS_WEIGHTINGS: tuple[str, ...] = ("balanced", "balanced_by_source", "none")
# The one list of photo types, for training, inspection, predict and the upload control: what Pillow
# decodes here (animated GIF/WebP: the first frame). HEIC is not among them: convert it to JPEG first.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff",
                                              ".avif"})

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
# The shipped model: models/shipped is a symlink to its release folder (see trashure/shipping.py).
DEFAULT_MODEL_PATH = MODELS_DIR / "shipped" / "mobilenetv2_trashure.keras"
BASE_WEIGHTS_PATH = MODELS_DIR / "mobilenetv2_imagenet_notop.weights.h5"
MODEL_FILENAME = "mobilenetv2_trashure.keras"
MAX_FINE_TUNE_BLOCKS = 16  # MobileNetV2's inverted-residual blocks above the stem
TFJS_TOOL_DIR = REPO_ROOT / "tools" / "tfjs"  # the TF.js converter venv and the Node runtime
# Photos read every epoch (exact mode, validation) are decoded once and kept while they take at most this
# much memory (trashnet4's training part: 226 MB); beyond it they stream from disk, batch by batch.
IN_MEMORY_BYTES = int(os.environ.get("TRASHURE_IN_MEMORY_MB", "1024")) << 20


def default_runs_dir() -> Path:
    return Path(os.environ.get("TRASHURE_RUNS", REPO_ROOT / "runs"))


def default_exports_dir() -> Path:
    """Where the dashboard's exports go: exports/<model>/<format>/ (TRASHURE_EXPORTS overrides)."""
    return Path(os.environ.get("TRASHURE_EXPORTS", REPO_ROOT / "exports"))


def default_cache_dir() -> Path:
    """Derived artefacts that are safe to delete (e.g. the TFLite conversion of the frozen base)."""
    if os.environ.get("TRASHURE_CACHE"):
        return Path(os.environ["TRASHURE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trashure"


SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_SOURCES = ("trashnet4", "mixed4")  # the shipped model's training folders, when they are there


def default_data_dirs() -> list[Path]:
    """The data folders from TRASHURE_DATA (several joined by os.pathsep), else the shared sources
    beside the repo that exist."""
    env = os.environ.get("TRASHURE_DATA")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [SHARED_DATA_DIR / name for name in DEFAULT_SOURCES if (SHARED_DATA_DIR / name).is_dir()]


def default_data_dir() -> Path | None:
    """The data folder from TRASHURE_DATA, else the shared TrashNet copy beside the repo, else None."""
    dirs = default_data_dirs()
    return dirs[0] if dirs else None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; saved as the run's config.json.

    The defaults are the reference recipe (Adam 1e-4, <=20 epochs, EarlyStopping on val_loss with
    patience 3 restoring the best weights, checkpoint on best val_accuracy, 80/10/10 split).
    """

    mode: str = "fast"  # "fast": cached base features; "exact": the notebook's loop verbatim
    epochs: int = 20
    learning_rate: float = 1e-4
    # 16: across sources (trashnet4 alone -> all of mixed4) +1.23 points on the mean of fifteen paired split
    # seeds against 32, with the same validation accuracy; the notebook's 32 stays in exact mode.
    batch_size: int = 16
    patience: int = 3
    seed: int = 42
    # Another draw of the offline views (0: the recipe's own): the split, the Keras layers and the batches draw
    # as before. Every setting was chosen on draw 0, which may flatter it by a point or so across sources, so
    # a new setting is compared on a draw that did not choose the recipe too (docs/experiments.md).
    view_draw: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    # Near-duplicate photos (same bytes or perceptual hashes a few bits apart) share one part of the split,
    # so no model is tested on a copy of a training photo (see trashure.fingerprints).
    leakage_safe_split: bool = True
    augment_flip: bool = True
    augment_rotation_degrees: float = 20.0  # random rotation within +/- this many degrees
    augment_brightness: float = 0.2  # random brightness shift within +/- this fraction of 0-255
    augmented_views: int = 4  # fast mode: augmented copies of each training photo (exact: see clean_view)
    # The clean photo is a training view too, besides its augmented ones; the exact mode, drawing afresh
    # every epoch, leaves a photo clean one time in 1 + augmented_views to match.
    clean_view: bool = True
    # Against the plain-board shortcut (offline, before the Keras augmentation layers; see offline_augment):
    paste_probability: float = 1.0  # an augmented view of a plain-board photo is cut out and pasted on a new background
    # The smallest a pasted object's longer side may be, as a part of the frame (sizes drawn log-uniformly up to
    # 0.9); 0.05 lost 1.25 points across sources on five paired seeds, mixed4's small cans among them
    paste_min_scale: float = 0.12
    # The pasted object widened by up to this factor (log-uniform; trashure.offline_augment): board photos are
    # landscape, so squashed to a square their objects are narrower than a portrait photo's; 1: as cut.
    paste_widen: float = 1.0
    # A pasted object seen at a slant: each of its corners moved by up to this part of its width and height
    # (a perspective warp, as a photo taken from above at an angle foreshortens litter on a floor); 0: flat.
    paste_perspective: float = 0.0
    # A share of pastes whose board-coloured pixels (the object's shadow on its board, the board through clear
    # plastic) darken the new background as shading instead of being painted on it as a grey-white halo
    # (trashure.offline_augment.shading_matte); 0: every paste as cut.
    paste_shading_probability: float = 0.0
    scene_probability: float = 0.0  # a pasted object lands on a training photo of `other` (not a generated background)
    texture_probability: float = 0.0  # ... or, instead of a generated background, on a photographed surface
    textures: str = ""  # the folder of those surfaces' photos; "": the package's own (trashure/assets/surfaces)
    # Fast mode: every class's board photos are pasted as often as those of the class cut out least often
    # (trashnet4's `other`: white paper stays on its board), so that a new background is no cue to the class.
    balanced_pastes: bool = False
    # a photo the board mask cannot cut an object out of is pasted whole, as a sheet, onto the new background
    # (white paper on the white board; but also every photo that is not on a board, e.g. all of mixed4's)
    frame_paste_probability: float = 0.0
    photo_noise: bool = True  # augmented views get random crops, colour, blur, sensor noise and JPEG quality
    grayscale_probability: float = 0.25  # with photo_noise: the share of augmented views turned grey
    # An augmented view of an object cut out of its board, enlarged around a point of it to half the frame
    # wide: what the close-up of a model that looks twice shows at prediction.
    closeup_probability: float = 0.0
    # a share of pasted views that first get one or two `other` objects, cut from their boards, as clutter
    distractor_probability: float = 0.0
    # a share of augmented views whose amplitude spectrum is mixed with a generated background's (Fourier
    # style mixing: the object's shape kept, its colours and texture another surface's); off: 0.5 lost 1.1
    # points across sources on five paired seeds (docs/experiments.md)
    amplitude_mix_probability: float = 0.0
    # "balanced": every class weighs the same in the loss; "balanced_by_source": the same, each class's weight
    # shared by the source folders that have it, by the square root of their photos of it, so that cans-web's
    # 735 product shots do not teach the whole can class: +2.18 points across sources on six folds, better on
    # each, for 0.8 of a point of trashnet4's own validation part (four split seeds; docs/experiments.md);
    # with one folder it is "balanced". "none": every photo weighs one.
    class_weighting: str = "balanced_by_source"
    # Validation photos seen also through this many augmented views (the same augmentation as training),
    # so that early stopping and the fine-tuning stage are judged on photos unlike the board, not only
    # on clean photos of the training sources.
    validation_views: int = 0
    # The second stage: the top blocks of MobileNetV2 unfrozen at a low learning rate (BatchNorm stays in
    # inference mode). 0 blocks: no second stage. 5e-5 rather than the usual 1e-5: across sources it scored
    # +1.9 points on the mean of five split seeds, better on each; at 5e-5, 4 blocks rather than 2 scored
    # +1.5 more, better on four seeds of five, where 6 blocks swung from -5 to +7 (docs/experiments.md).
    fine_tune_blocks: int = 4
    fine_tune_epochs: int = 30
    fine_tune_learning_rate: float = 5e-5
    # As long as the stage: with the mean of its epochs kept (below), stopping early only shortens the path
    # averaged. Thirty epochs, all averaged, scored +1.18 points across sources over patience 5 and at most
    # 20, with validation up too (the same nine runs scored both ways, seven better; docs/experiments.md,
    # "A longer path to average").
    fine_tune_patience: int = 30
    # The fine-tuned model is the mean of the weights at the end of every fine-tuning epoch (stochastic
    # weight averaging, Izmailov et al. 2018) rather than the one epoch of lowest validation loss: that loss
    # jumps by half from one epoch to the next on a few hundred photos, and the mean of the path scored
    # +2.1 points across sources over five split seeds, with validation up too (docs/experiments.md).
    fine_tune_average_weights: bool = True
    # Which model the stage ends with: "unless_worse" keeps the fine-tuned one unless its validation
    # photos' losses are higher than the frozen stage's beyond chance (paired test, p < 0.05); "if_better"
    # keeps it only when its validation loss is lower, which on a few hundred photos dropped a stage worth
    # 3.7 points across sources (docs/experiments.md, "Keeping the fine-tuned model").
    fine_tune_keep: str = "unless_worse"
    # Fast mode: a fine-tuning epoch shows each training photo once, through one of its cached views drawn
    # at random (an exact epoch shows each photo once, freshly augmented), rather than all 1 + K views:
    # the same number of steps as the exact mode, at a fifth of the time an epoch.
    fine_tune_one_view_per_epoch: bool = True
    # Fast mode's fine-tuning stage: the share of batches whose activations at the cut get their per-channel
    # statistics mixed between photos (MixStyle, trashure.training.style_mix); refused in exact mode.
    style_mix_probability: float = 0.0
    # Fast mode's fine-tuning stage: the share of training rows whose activations at the cut lose one block of
    # cells, 3-7 a side of 14, filled with the row's channel means (DropBlock, trashure.training.drop_block);
    # refused in exact mode. 0: off.
    drop_block_probability: float = 0.0
    # Fast mode, both stages: each training row mixed with another of its batch, inputs and labels alike,
    # lambda ~ Beta(alpha, alpha) (mixup at the cached features, trashure.training.mixup); 0: off.
    mixup_alpha: float = 0.0
    dense_units: int = 128
    # The share of pooled features the head's training drops (keras.layers.Dropout before its hidden layer,
    # both stages); 0: no Dropout layer, the notebook's head. Nothing is dropped at prediction.
    head_dropout: float = 0.0
    # The saved model looks twice (trashure.glimpse): the whole photo, then a close-up this part of the photo
    # wide around the cell its head finds least like background, from a photo twice as sharp (448x448 in);
    # the two passes' probabilities are averaged. 0: one pass at 224x224, the notebook's model. Across
    # sources +4.5 points on the mean of five split seeds, better on each; 0.5 to 0.7 wide all within 0.6.
    glimpse_side: float = 0.5
    # ...and at the photo's mirror image too, both looks, the four averaged: +0.8 points across sources (five
    # split seeds, as good or better on four) for twice the arithmetic at prediction. Training is unchanged.
    glimpse_mirror: bool = True
    # Where training runs (trashure.training.distribute): one device, mirrored over this machine's devices,
    # or multi-worker over several processes or machines (TF_CONFIG). Not part of the recipe: the same
    # config trains the same model, a global batch of batch_size split across the replicas.
    strategy: str = "default"
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
        if self.augmented_views < 0 or self.validation_views < 0:
            raise ValueError("augmented_views and validation_views must be 0 or more")
        if not 0 < self.learning_rate < 1 or not 0 < self.fine_tune_learning_rate < 1:
            raise ValueError("learning rates must be between 0 and 1")
        shares = ("paste_probability", "paste_shading_probability", "scene_probability", "texture_probability",
                  "frame_paste_probability", "grayscale_probability", "closeup_probability", "distractor_probability",
                  "style_mix_probability", "drop_block_probability", "amplitude_mix_probability")
        if not 0.02 <= self.paste_min_scale <= 0.9:
            raise ValueError("paste_min_scale must be between 0.02 and 0.9 (a part of the frame)")
        if self.view_draw < 0:
            raise ValueError("view_draw must be 0 (the recipe's own views) or more")
        if not 0 <= self.paste_perspective <= 0.4:
            raise ValueError("paste_perspective must be between 0 (flat) and 0.4 (a part of the object's size)")
        if not 1 <= self.paste_widen <= 3:
            raise ValueError("paste_widen must be between 1 (as cut) and 3")
        if not all(0 <= getattr(self, name) <= 1 for name in shares):
            raise ValueError(f"{', '.join(shares[:-1])} and {shares[-1]} must be between 0 and 1")
        if not 0 <= self.mixup_alpha <= 10:
            raise ValueError("mixup_alpha must be between 0 (off) and 10")
        if self.mode == "exact" and self.mixup_alpha > 0:
            raise ValueError("mixup_alpha mixes the fast mode's cached features; use --mode fast")
        if not 0 <= self.head_dropout < 1:
            raise ValueError("head_dropout must be at least 0 and below 1")
        if self.mode == "exact" and self.balanced_pastes:
            raise ValueError("balanced_pastes weighs the fast mode's cached views; use --mode fast")
        for name in ("style_mix_probability", "drop_block_probability"):
            if self.mode == "exact" and getattr(self, name) > 0:
                # Its batches are photos, not activations at the cut: refused rather than silently ignored.
                raise ValueError(f"{name} works on the fast mode's cached activations at the cut; "
                                 "the exact mode has none: use --mode fast")
        if self.strategy not in ("default", "mirrored", "multiworker"):
            raise ValueError(f"strategy must be default, mirrored or multiworker, not {self.strategy!r}")
        if self.fine_tune_keep not in ("unless_worse", "if_better"):
            raise ValueError(f"fine_tune_keep must be 'unless_worse' or 'if_better', not {self.fine_tune_keep!r}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ValueError(f"class_weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, "
                             f"not {self.class_weighting!r}")
        if not 0 <= self.glimpse_side <= 1:
            raise ValueError("glimpse_side must be between 0 (no close-up) and 1")
        if not 0 <= self.fine_tune_blocks <= MAX_FINE_TUNE_BLOCKS:
            raise ValueError(f"fine_tune_blocks must be between 0 and {MAX_FINE_TUNE_BLOCKS}")
        if self.fine_tune_epochs < 0 or self.fine_tune_patience < 0:
            raise ValueError("fine_tune_epochs and fine_tune_patience must be 0 or more")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError("val_fraction + test_fraction must be below 1")
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def augments(self) -> bool:
        return self.augment_flip or self.augment_rotation_degrees > 0 or self.augment_brightness > 0

    @property
    def fine_tunes(self) -> bool:
        return self.fine_tune_blocks > 0 and self.fine_tune_epochs > 0

    @property
    def model_input_size(self) -> int:
        """The saved model's photo size: twice the training size when it looks twice."""
        return self.image_size * (2 if self.glimpse_side > 0 else 1)

    @property
    def max_epochs(self) -> int:
        return self.epochs + (self.fine_tune_epochs if self.fine_tunes else 0)

    @classmethod
    def for_mode(cls, mode: str = "fast", **overrides: Any) -> "TrainConfig":
        """The default recipe for a mode: `exact` is the notebook verbatim (no class weights, no offline
        augmentation, no fine-tuning) unless overrides add them; `fast` is Trashure's recipe."""
        base = dict(REFERENCE_RECIPE) if mode == "exact" else {}
        return cls(**{**base, "mode": mode, **overrides})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        # A config saved before a recipe option existed was trained without it.
        before = {**REFERENCE_RECIPE, **ADDED_LATER}
        legacy = {k: v for k, v in before.items() if k not in d} if "mode" in d else {}
        return cls(**{**legacy, **{k: v for k, v in d.items() if k in known}})


# What `--mode exact` leaves out of Trashure's recipe, so that it stays the notebook's.
REFERENCE_RECIPE: dict[str, Any] = {"paste_probability": 0.0, "paste_shading_probability": 0.0,
                                    "scene_probability": 0.0, "texture_probability": 0.0,
                                    "photo_noise": False,
                                    "grayscale_probability": 0.0, "closeup_probability": 0.0,
                                    "distractor_probability": 0.0, "style_mix_probability": 0.0,
                                    "drop_block_probability": 0.0,
                                    "amplitude_mix_probability": 0.0, "mixup_alpha": 0.0,
                                    "class_weighting": "none", "batch_size": 32, "fine_tune_blocks": 0,
                                    "validation_views": 0, "glimpse_side": 0.0, "glimpse_mirror": False}
# Options added after models were trained without them, in both modes: what an older config meant.
ADDED_LATER: dict[str, Any] = {"leakage_safe_split": False, "fine_tune_one_view_per_epoch": False,
                               "closeup_probability": 0.0, "distractor_probability": 0.0,
                               "style_mix_probability": 0.0, "grayscale_probability": 0.0,
                               "fine_tune_average_weights": False,
                               "glimpse_side": 0.0, "glimpse_mirror": False, "fine_tune_keep": "if_better",
                               "texture_probability": 0.0, "balanced_pastes": False, "frame_paste_probability": 0.0,
                               "amplitude_mix_probability": 0.0, "drop_block_probability": 0.0,
                               "paste_shading_probability": 0.0}
