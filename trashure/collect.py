"""Collecting the user's own photos: the best cure for photos unlike the training set.

A photo the model got wrong (or was unsure of) is saved into a collection folder under the class the
person picks, with a row in that folder's manifest.csv. The folder has one sub-folder per class, like any
data folder, so the Dataset page lists it and the next training run can include it. Never into the shared
datasets; refused in read-only mode.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

from trashure.access import require_allowed, require_writable
from trashure.config import REPO_ROOT, SHARED_DATA_DIR
from trashure.errors import TrashureError
from trashure.files import atomic_write_bytes, atomic_write_text
from trashure.images import open_image
from trashure.runs import now_iso

MANIFEST_FIELDS = ["file", "class", "saved_at", "source", "predicted", "confidence", "model"]
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif",
              "AVIF": ".avif", "MPO": ".jpg"}


def default_collection_dir() -> Path:
    """TRASHURE_COLLECT, else collected/ in the repository (ignored by git)."""
    return Path(os.environ.get("TRASHURE_COLLECT") or REPO_ROOT / "collected")


def save_photo(data: bytes, class_name: str, classes: tuple[str, ...] | list[str], source: str,
               predicted: str, confidence: float, model: str, folder: Path | None = None) -> Path:
    """Save a photo's bytes under folder/<class_name>/ and record it in folder/manifest.csv."""
    require_writable("Saving photos for training")
    folder = Path(folder or default_collection_dir())
    if class_name not in classes:
        raise TrashureError(f"{class_name!r} is not one of the model's classes ({', '.join(classes)})")
    try:
        inside_shared = folder.resolve().is_relative_to(SHARED_DATA_DIR.resolve())
    except OSError:
        inside_shared = False
    if inside_shared:
        raise TrashureError(f"{folder} is one of the shared datasets; collect into a folder of your own "
                            "(TRASHURE_COLLECT)")
    require_allowed(folder)
    image = open_image(data)  # refuses what is not a photo
    name = f"{now_iso().replace(':', '').replace('+0000', 'Z')}-{hashlib.sha256(data).hexdigest()[:10]}"
    target = folder / class_name / (name + EXTENSIONS.get(image.format or "", ".jpg"))
    atomic_write_bytes(target, data)
    _append(folder / "manifest.csv", {"file": f"{class_name}/{target.name}", "class": class_name,
                                      "saved_at": now_iso(), "source": source, "predicted": predicted,
                                      "confidence": f"{confidence:.4f}", "model": model})
    return target


def _append(manifest: Path, row: dict) -> None:
    rows = []
    if manifest.is_file():
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows + [row])
    atomic_write_text(manifest, buf.getvalue())
