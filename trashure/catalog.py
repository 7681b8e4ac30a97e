"""Light-weight facts for the dashboard's pages: the active model's card, without importing TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trashure.config import DEFAULT_MODEL_PATH
from trashure.runs import read_json


def model_card(model_path: str | Path = DEFAULT_MODEL_PATH) -> dict[str, Any]:
    """The card beside a model (<name>.json, or model_card.json in a run folder); {} if none."""
    model_path = Path(model_path)
    for candidate in (model_path.with_suffix(".json"), model_path.parent / "model_card.json"):
        card = read_json(candidate)
        if isinstance(card, dict):
            return card
    return {}
