"""Trashure's own exceptions: each carries a message a person can act on."""

from __future__ import annotations


class TrashureError(Exception):
    """Base class: anything the CLI and the app show as a message rather than a traceback."""


class ImageLoadError(TrashureError):
    """A photo could not be read (missing, empty, truncated, not an image, too large)."""


class DatasetError(TrashureError):
    """A data folder cannot be used (missing, not a folder, no classes, too few photos)."""


class ModelLoadError(TrashureError):
    """A model file is missing, damaged, of the wrong format or does not match its card."""


class RunError(TrashureError):
    """A run folder is missing or cannot be started (e.g. another run is going on)."""


class WeightsError(TrashureError):
    """The ImageNet base weights cannot be fetched, converted or verified."""
