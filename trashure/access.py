"""Who may do what on a shared dashboard: the data folders it may read, and a read-only presenter mode.

    TRASHURE_DATA_ROOTS=/srv/photos:/data   only folders inside these roots can be chosen or trained on
                                            (`..` and symlinks are resolved first, so neither leaves a root)
    TRASHURE_READ_ONLY=1                    nothing that changes the studio: no folder picking, training,
                                            cancelling, choosing the active model or exporting; Classify,
                                            Dataset and Results keep working

There is no login: anyone who reaches the dashboard has these rights. Put an authenticating proxy in front
of it to decide who reaches it.
"""

from __future__ import annotations

import os
from pathlib import Path

from trashure.errors import TrashureError


class AccessError(TrashureError):
    """An action this dashboard is not allowed to take (read-only mode, a folder outside the data roots)."""


def read_only() -> bool:
    return os.environ.get("TRASHURE_READ_ONLY", "").strip().lower() in ("1", "true", "yes", "on")


def require_writable(action: str) -> None:
    if read_only():
        raise AccessError(f"{action} is switched off: this dashboard is in read-only presenter mode "
                          "(TRASHURE_READ_ONLY).")


def data_roots() -> list[Path] | None:
    """The allowed data roots, resolved; None when any folder may be used."""
    text = os.environ.get("TRASHURE_DATA_ROOTS", "").strip()
    if not text:
        return None
    return [Path(p).expanduser().resolve() for p in text.split(os.pathsep) if p.strip()]


def allowed(folder: str | Path) -> bool:
    roots = data_roots()
    if roots is None:
        return True
    try:
        real = Path(folder).expanduser().resolve()
    except (OSError, RuntimeError):
        return False
    return any(real == root or real.is_relative_to(root) for root in roots)


def require_allowed(folder: str | Path) -> Path:
    if not allowed(folder):
        roots = ", ".join(str(r) for r in data_roots() or [])
        raise AccessError(f"{folder} is outside the data folders this dashboard may read ({roots}; "
                          "TRASHURE_DATA_ROOTS).")
    return Path(folder)
