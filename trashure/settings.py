"""The studio's small persistent state: which data folder and which model are active.

Stored as JSON in the runs folder (state.json), written atomically; environment variables win:
TRASHURE_DATA for the data folder, TRASHURE_MODEL for the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from trashure.access import allowed, require_allowed, require_writable
from trashure.config import DEFAULT_MODEL_PATH, default_data_dirs, default_runs_dir
from trashure.files import atomic_write_json, read_json


def _state_path() -> Path:
    return default_runs_dir() / "state.json"


def _state() -> dict:
    state = read_json(_state_path(), {})
    return state if isinstance(state, dict) else {}


def _update(**fields) -> None:
    atomic_write_json(_state_path(), {**_state(), **fields})


def active_data_dirs() -> list[Path]:
    """The data folders the dashboard works on (merged by class name), in the order chosen."""
    chosen = _state().get("data_dirs") or ([_state()["data_dir"]] if _state().get("data_dir") else [])
    dirs = [Path(p) for p in chosen] if chosen and not os.environ.get("TRASHURE_DATA") else default_data_dirs()
    return [d for d in dirs if allowed(d)]  # a folder outside the data roots is never offered


def active_data_dir() -> Path | None:
    """The first active data folder (for what takes one folder: export calibration)."""
    dirs = active_data_dirs()
    return dirs[0] if dirs else None


def set_active_data_dirs(paths: list[str | Path]) -> None:
    require_writable("Choosing data folders")
    for path in paths:
        require_allowed(path)
    _update(data_dirs=[str(Path(p).expanduser().resolve()) for p in paths], data_dir=None)


def set_active_data_dir(path: str | Path) -> None:
    set_active_data_dirs([path])


def active_model_path() -> Path:
    if os.environ.get("TRASHURE_MODEL"):
        return Path(os.environ["TRASHURE_MODEL"])
    chosen = _state().get("model")
    if chosen and Path(chosen).is_file():
        return Path(chosen)
    return DEFAULT_MODEL_PATH


SHIPPED = "shipped"


def set_active_model(path: str | Path | None) -> None:
    """Make a model the active one (None: back to the shipped model); the one it replaces is remembered,
    so that it can be restored."""
    require_writable("Choosing the active model")
    state = _state()
    new = str(Path(path).resolve()) if path else None
    if new != state.get("model"):
        _update(model=new, previous_model=state.get("model") or SHIPPED)


def previous_model_path() -> Path | None:
    """The model that was active before the current one, while its file is still there."""
    previous = _state().get("previous_model")
    if previous == SHIPPED:
        return DEFAULT_MODEL_PATH
    return Path(previous) if previous and Path(previous).is_file() else None
