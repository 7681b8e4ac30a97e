"""The models the dashboard can show, without importing TensorFlow: the shipped model and every run, each
under one name, with its card, history, metrics, per-photo predictions and data folders."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trashure.config import DEFAULT_MODEL_PATH, SHARED_DATA_DIR
from trashure.errors import ModelLoadError
from trashure.modelfile import read_card
from trashure.runs import Run, list_runs

SHIPPED_LABEL = "shipped"


def model_card(model_path: str | Path = DEFAULT_MODEL_PATH) -> dict[str, Any]:
    """The card beside a model (<name>.json, or model_card.json in a run folder); {} if none or unreadable."""
    try:
        return read_card(model_path)
    except ModelLoadError:
        return {}


def predictions_path(model_path: Path) -> Path:
    """Where a shipped model's per-photo test predictions travel with it: <name>.predictions.csv."""
    return model_path.with_name(model_path.stem + ".predictions.csv")


def display_name(model_path: Path, card: dict[str, Any] | None = None) -> str:
    """One name for a model everywhere in the UI: 'shipped · <run id>' for the shipped model, else its run id."""
    card = model_card(model_path) if card is None else card
    run_id = card.get("run_id") or Path(model_path).parent.name
    if Path(model_path).resolve() == DEFAULT_MODEL_PATH.resolve():
        return f"{SHIPPED_LABEL} · {card.get('run_id')}" if card.get("run_id") else SHIPPED_LABEL
    return run_id


@dataclass
class ModelEntry:
    """A model as the dashboard shows it; `run` is None for the shipped model."""

    name: str
    path: Path
    run: Run | None = None

    @property
    def shipped(self) -> bool:
        return self.run is None

    def card(self) -> dict[str, Any]:
        return model_card(self.path)

    def metrics(self) -> dict[str, Any] | None:
        """The run's metrics.json, or the same facts from the shipped model's card."""
        if self.run is not None:
            return self.run.metrics()
        card = self.card()
        m = card.get("metrics")
        if not m:
            return None
        return {"accuracy": m["test_accuracy"], "loss": m["test_loss"], "n_images": m["test_images"],
                "confusion_matrix": m["confusion_matrix"], "per_class": m["per_class"], "classes": card["classes"],
                "per_source": m.get("per_source", {}), "best_val_accuracy": m.get("best_val_accuracy"),
                "kept_val_accuracy": m.get("kept_val_accuracy"), "epochs_run": card.get("training", {}).get(
                    "epochs_run"), "timings": card.get("training", {}).get("timings", {})}

    def history(self) -> list[dict[str, Any]]:
        return self.run.history() if self.run is not None else self.card().get("history", [])

    def predictions(self) -> list[dict[str, str]]:
        if self.run is not None:
            return self.run.predictions()
        try:
            with open(predictions_path(self.path), newline="") as f:
                return list(csv.DictReader(f))
        except OSError:
            return []

    def config(self) -> dict[str, Any]:
        return self.run.config() if self.run is not None else self.card().get("training", {})

    def state(self) -> str:
        return self.run.state if self.run is not None else "done"

    def data_dirs(self, candidates: list[Path] | None = None) -> list[Path]:
        """The folders it was trained on: a run records them; the shipped card names them, found among the
        candidates (the active folders) or beside the repo in ../shared/data."""
        if self.run is not None:
            return self.run.data_dirs()
        names = self.card().get("data", {}).get("folders", [])
        by_name = {Path(d).name: Path(d) for d in (candidates or [])}
        return [by_name.get(n, SHARED_DATA_DIR / n) for n in names]


def model_entries(runs_dir: str | Path | None = None) -> list[ModelEntry]:
    """The shipped model first (when it is there), then every run, newest first."""
    entries = []
    if DEFAULT_MODEL_PATH.is_file():
        entries.append(ModelEntry(display_name(DEFAULT_MODEL_PATH), DEFAULT_MODEL_PATH))
    entries += [ModelEntry(run.id, run.model_path, run) for run in list_runs(runs_dir)]
    return entries


def comparison_rows(entries: list[ModelEntry]) -> list[dict[str, Any]]:
    """One row a model for the comparison table (no empty cells: '–' where a fact does not apply)."""
    rows = []
    for entry in entries:
        metrics, config = entry.metrics() or {}, entry.config()
        total_s = (metrics.get("timings") or {}).get("total_s")
        rows.append({
            "model": entry.name, "state": entry.state(), "mode": config.get("mode", "–"),
            "data": ", ".join(Path(d).name for d in entry.data_dirs()) or "–",
            "test accuracy": metrics.get("accuracy"), "test loss": metrics.get("loss"),
            "epochs": metrics.get("epochs_run") if metrics.get("epochs_run") is not None else "–",
            "fine-tuned blocks": config.get("fine_tune_blocks", 0),
            "strategy": config.get("strategy", "default"),
            "seed": config.get("seed", "–"), "minutes": round(total_s / 60, 1) if total_s else None,
        })
    return rows
