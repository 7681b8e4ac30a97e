"""Light-weight facts for the dashboard's pages: the active model's card, without importing TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trashure.config import DEFAULT_MODEL_PATH
from trashure.errors import ModelLoadError
from trashure.prediction import read_card


def model_card(model_path: str | Path = DEFAULT_MODEL_PATH) -> dict[str, Any]:
    """The card beside a model (<name>.json, or model_card.json in a run folder); {} if none or unreadable."""
    try:
        return read_card(model_path)
    except ModelLoadError:
        return {}
