"""Shipping a model: promotion in one atomic step, with every earlier model kept and restorable.

    models/shipped -> releases/<release>      the one pointer every reader follows (a symlink)
    models/releases/<release>/                a complete, self-consistent set: the .keras model (class list
        mobilenetv2_trashure.keras            sealed inside), its TFLite twin, its card (which records
        mobilenetv2_trashure.tflite           both files' sha256) and its test predictions
        mobilenetv2_trashure.json
        mobilenetv2_trashure.predictions.csv
    models/history.json                       each promotion and undo: which release replaced which

A release is built in a staging folder and renamed into place complete; then the pointer is replaced by a
rename, the one step that switches every file at once. A promotion killed at any point leaves the old
release in use, whole.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from trashure.config import MODEL_FILENAME, MODELS_DIR
from trashure.errors import RunError
from trashure.files import atomic_write_bytes, atomic_write_json, read_json
from trashure.runs import Run, now_iso

POINTER = "shipped"
RELEASES = "releases"
HISTORY = "history.json"

Echo = Callable[[str], None]


def shipped_path(models_dir: Path = MODELS_DIR) -> Path:
    return Path(models_dir) / POINTER / MODEL_FILENAME


def current_release(models_dir: Path = MODELS_DIR) -> str | None:
    pointer = Path(models_dir) / POINTER
    return Path(os.readlink(pointer)).name if pointer.is_symlink() else None


def history(models_dir: Path = MODELS_DIR) -> list[dict[str, Any]]:
    return read_json(Path(models_dir) / HISTORY, []) or []


def releases(models_dir: Path = MODELS_DIR) -> list[str]:
    folder = Path(models_dir) / RELEASES
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if folder.is_dir() else []


def promote(run: Run, models_dir: Path = MODELS_DIR, force: bool = False, echo: Echo = print) -> Path:
    """Ship a finished run's model: build its release, then switch the pointer to it. A run that is not
    `done` is refused unless force (then with a warning)."""
    if run.state != "done":
        if not force:
            raise RunError(f"run {run.id} is {run.state}, not done: only a finished run is shipped "
                           "(--force ships it anyway)")
        echo(f"warning: shipping run {run.id} although it is {run.state} (--force)")
    if not run.has_model:
        raise RunError(f"run {run.id} has no model file (state: {run.state})")
    models_dir = Path(models_dir)
    release = _new_release_name(models_dir, run.id)
    folder = _build_release(run, models_dir, release)
    previous = current_release(models_dir)
    # Recorded before the switch: a history entry for a release that never got shipped is harmless,
    # a shipped release missing from the history could not be undone.
    _record(models_dir, {"action": "promote", "release": release, "run_id": run.id, "previous": previous})
    _point_to(models_dir, release)
    echo(f"shipped run {run.id} as release {release} ({folder}); the previous release ({previous or 'none'}) "
         "is kept: `python -m trashure promote --undo` restores it")
    return shipped_path(models_dir)


def undo(models_dir: Path = MODELS_DIR, echo: Echo = print) -> str:
    """Switch back to the release the current one replaced."""
    models_dir = Path(models_dir)
    current = current_release(models_dir)
    previous = next((h.get("previous") for h in reversed(history(models_dir))
                     if h.get("release") == current and h.get("action") == "promote"), None)
    if not previous or not (models_dir / RELEASES / previous).is_dir():
        raise RunError(f"nothing to undo: release {current or 'none'} did not replace a release that is still kept")
    _record(models_dir, {"action": "undo", "release": previous, "previous": current})
    _point_to(models_dir, previous)
    echo(f"the shipped model is release {previous} again (release {current} is kept)")
    return previous


def _new_release_name(models_dir: Path, run_id: str) -> str:
    existing = set(releases(models_dir))
    name, n = run_id, 2
    while name in existing:
        name, n = f"{run_id}-{n}", n + 1
    return name


def _build_release(run: Run, models_dir: Path, release: str) -> Path:
    """A complete release folder, built in staging and renamed into place only when every file is there."""
    from trashure.modelfile import sealed_facts, trusted_twin, twin_record, verified_card
    from trashure.weights import sha256_file

    sha = sha256_file(run.model_path)
    card = verified_card(run.model_path, sha)
    if not card.get("classes") and not sealed_facts(run.model_path):
        raise RunError(f"run {run.id} has no model card with its classes; it cannot be shipped")
    root = models_dir / RELEASES
    staging = root / f".staging-{release}-{os.getpid()}"
    try:
        staging.mkdir(parents=True)
        model = staging / MODEL_FILENAME
        _copy(run.model_path, model)
        twin = trusted_twin(run.model_path, card, sha)
        if twin is not None:
            _copy(twin, model.with_suffix(".tflite"))
            record = twin_record(model, model.with_suffix(".tflite"))
        else:
            from trashure.prediction import load_keras_model, write_tflite_twin

            record = write_tflite_twin(load_keras_model(model), model)
        predictions = run.dir / "predictions.csv"
        if predictions.is_file():  # so the shipped model keeps its misclassified gallery
            _copy(predictions, model.with_name(model.stem + ".predictions.csv"))
        atomic_write_json(model.with_suffix(".json"), {**card, "file": MODEL_FILENAME, "model_sha256": sha,
                                                       "tflite": record, "release": release,
                                                       "promoted_at": now_iso()})
        _fsync_dir(staging)
        os.rename(staging, root / release)
        _fsync_dir(root)
    except OSError as exc:
        raise RunError(f"cannot write the release to {root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / release


def _copy(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, Path(src).read_bytes())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point_to(models_dir: Path, release: str) -> None:
    """Replace the pointer with one rename: readers see the old release or the new one, never a mix."""
    tmp = models_dir / f".{POINTER}.{os.getpid()}.{time.monotonic_ns()}"
    try:
        os.symlink(Path(RELEASES) / release, tmp)
        os.replace(tmp, models_dir / POINTER)
        _fsync_dir(models_dir)
    except OSError as exc:
        raise RunError(f"cannot switch {models_dir / POINTER} to release {release}: {exc.strerror or exc}") from None
    finally:
        if tmp.is_symlink():
            tmp.unlink()


def _record(models_dir: Path, entry: dict[str, Any]) -> None:
    try:
        atomic_write_json(models_dir / HISTORY, history(models_dir) + [{**entry, "at": now_iso()}])
    except OSError as exc:
        raise RunError(f"cannot write the release history {models_dir / HISTORY}: {exc.strerror or exc}") from None
