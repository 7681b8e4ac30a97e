"""Training: the reference recipe and Trashure's recipe, in two modes that record the same files.

- `prepared`: data folders scanned, fingerprinted and split (stratified by class and source, near-duplicates
  kept together); each part's photos are rows decoded batch by batch when a stage reads them.
- `distribute`: where training runs (one device, mirrored, multi-worker) and who writes the run.
- `views`: the clean photo and its augmented views (offline cut-and-paste and camera noise, then the
  model's Keras augmentation layers), through the frozen part of the base.
- `fast`: the frozen part runs once per view (LiteRT); the head, then the unfrozen top blocks, train on
  the cached activations.
- `exact`: the notebook's loop, every epoch through the whole model; its optional fine-tuning stage too.
- `run`: one training run end to end: the run folder, metrics per class and per source, the card.
"""

from trashure.training.keras_parts import early_stopping
from trashure.training.prepared import PreparedData, prepare_data
from trashure.training.run import TrainingCancelled, model_card, save_model_atomic, train

__all__ = ["PreparedData", "TrainingCancelled", "early_stopping", "model_card", "prepare_data",
           "save_model_atomic", "train"]
