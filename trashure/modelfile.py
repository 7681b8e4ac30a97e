"""Which files belong together: a .keras model, the facts sealed inside it, its card and its TFLite twin.

A card is a JSON file beside the model and anyone can edit it; the model's own bytes are the only thing a
reader can trust. So a trained model carries its class list inside its .keras zip (`trashure.json`, which
Keras ignores), the card records the model's sha256, and the twin's record names both the model's sha256 and
its own. A reader checks all three before it trusts any of them, without importing TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Sequence

from trashure.errors import ModelLoadError
from trashure.weights import sha256_file

FACTS_ENTRY = "trashure.json"  # inside the .keras zip


def check_model_file(path: str | Path) -> Path:
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as exc:  # e.g. a path component longer than the file system allows
        raise ModelLoadError(f"model path {str(path)[:120]}… cannot be used: {exc.strerror}") from None
    if not exists:
        raise ModelLoadError(f"model file {path} does not exist. Train one (python -m trashure train) "
                             "or give the path of a .keras file.")
    if is_dir:
        raise ModelLoadError(f"{path} is a folder; give the path of a .keras model file.")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file {path} is empty (0 bytes); it was not saved completely.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a Keras .keras model file (truncated, or another format).")
    return path


def seal_facts(path: Path, facts: dict[str, Any]) -> None:
    """Write facts (the class list, in output order) into a .keras file, in place and atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.sealing")
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
            for item in src.infolist():
                if item.filename != FACTS_ENTRY:
                    with src.open(item) as f_in, dst.open(item, "w") as f_out:
                        shutil.copyfileobj(f_in, f_out, 1 << 20)
            dst.writestr(FACTS_ENTRY, json.dumps(facts, indent=2))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sealed_facts(path: Path) -> dict[str, Any] | None:
    """The facts sealed in a .keras file, or None for a model that has none (an older or foreign model)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if FACTS_ENTRY not in archive.namelist():
                return None
            return json.loads(archive.read(FACTS_ENTRY))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{path}: its sealed facts cannot be read ({exc}).") from None


def card_path_for(model_path: Path) -> Path | None:
    """The model's card: <name>.json beside it, or model_card.json in a run folder."""
    for candidate in (model_path.with_suffix(".json"), model_path.parent / "model_card.json"):
        if candidate.is_file():
            return candidate
    return None


def read_card(model_path: str | Path) -> dict[str, Any]:
    """The card beside a model, unchecked ({} when there is none)."""
    path = card_path_for(Path(model_path))
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model card {path} cannot be read ({exc}); fix or delete it.") from None


def verified_card(model_path: Path, sha: str | None = None) -> dict[str, Any]:
    """The card, refused when it records another model's sha256 or lists the classes in another order
    than the model itself."""
    card = read_card(model_path)
    if not card:
        return card
    recorded = card.get("model_sha256")
    if recorded and recorded != (sha or sha256_file(model_path)):
        raise ModelLoadError(f"the card {card_path_for(model_path)} describes another model file "
                             f"(sha256 {recorded[:12]}…), not {model_path}: the files do not belong together. "
                             "Promote or copy the model with its card again.")
    sealed = sealed_facts(model_path)
    if sealed and card.get("classes") and list(card["classes"]) != list(sealed.get("classes", [])):
        raise ModelLoadError(f"the card {card_path_for(model_path)} lists the classes "
                             f"{', '.join(card['classes'])}, but the model was trained with "
                             f"{', '.join(sealed['classes'])}: the card does not belong to this model.")
    return card


def bound_classes(model_path: Path, n_outputs: int, card: dict[str, Any],
                  classes: Sequence[str] | None = None) -> tuple[str, ...]:
    """The class names of the model's outputs: sealed in the model, else from its card, else given
    explicitly (--classes). Never guessed."""
    sealed = sealed_facts(model_path)
    names = tuple(classes or (sealed or {}).get("classes") or card.get("classes") or ())
    if not names:
        raise ModelLoadError(f"{model_path} has no card and no class list of its own, so its {n_outputs} outputs "
                             "have no names: give them in output order (--classes a,b,c,...).")
    if len(names) != n_outputs:
        where = "given" if classes else ("sealed in the model" if sealed else "on its card")
        raise ModelLoadError(f"{model_path} gives {n_outputs} outputs but {len(names)} class names are {where} "
                             f"({', '.join(names)}): they do not belong to this model.")
    return names


def twin_record(model_path: Path, twin_path: Path) -> dict[str, Any]:
    """The card's record of a TFLite twin: made from this model's bytes, with the twin's own hash."""
    return {"file": twin_path.name, "source_sha256": sha256_file(model_path), "sha256": sha256_file(twin_path),
            "what": "float32 TFLite conversion of the .keras file, for LiteRT"}


def trusted_twin(model_path: Path, card: dict[str, Any], sha: str) -> Path | None:
    """The TFLite twin beside the model, when the card says it was made from this model's bytes and the twin
    is the file the card recorded; else None (it is then converted again, never trusted)."""
    record = card.get("tflite") or {}
    twin = model_path.with_suffix(".tflite")
    if not twin.is_file() or record.get("source_sha256") != sha:
        return None
    if record.get("sha256") and record["sha256"] != sha256_file(twin):
        return None
    return twin
