"""Leave one source out, with every photo fitted to its square keeping its aspect instead of squashed.

    python bench/photo_fit.py --fit crop|letterbox [bench/cross_source.py's options]

The model's input contract (the notebook's `target_size`, every export's metadata) squashes a photo to
224x224, so a landscape board photo's object reaches the model narrower than a portrait photo's. This probe
asks whether keeping the aspect helps across sources: `crop` takes the centred square of the photo (as
ImageNet's evaluation does), `letterbox` fits the whole photo into the square and extends its short side by
repeating the edge pixels (a board photo's frame stays board, so cut-and-paste still finds its object).
It is a probe, not an option of the recipe: changing the contract would change the app, the CLI and every
exported format, so it replaces the loader of this process only (`trashure.images.resize`, which training,
evaluation and prediction all read photos through) and keeps its own cache folder, since the cached
features and views are keyed by the photo files, not by how they were fitted.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure import images  # noqa: E402
from trashure.config import default_cache_dir  # noqa: E402


def centre_crop(image: Image.Image, size: int = images.IMAGE_SIZE) -> Image.Image:
    """The centred square of the photo, its side the photo's short side, resized to size x size."""
    w, h = image.size
    side = min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    return image.resize((size, size), Image.Resampling.BILINEAR, box=box)


def letterbox(image: Image.Image, size: int = images.IMAGE_SIZE) -> Image.Image:
    """The whole photo scaled to fit size x size, its short side extended by repeating the edge pixels."""
    w, h = image.size
    scale = size / max(w, h)
    inner = np.asarray(image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR))
    dh, dw = size - inner.shape[0], size - inner.shape[1]
    return Image.fromarray(np.pad(inner, ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)), mode="edge"))


FITS = {"crop": centre_crop, "letterbox": letterbox}
CROSS_SOURCE = Path(__file__).with_name("cross_source.py")


def main() -> int:
    if "--fit" not in sys.argv or sys.argv.index("--fit") + 1 >= len(sys.argv):
        print(f"usage: python bench/photo_fit.py --fit {'|'.join(FITS)} [bench/cross_source.py's options]")
        return 2
    at = sys.argv.index("--fit")
    fit = sys.argv[at + 1]
    if fit not in FITS:
        print(f"--fit must be one of {', '.join(FITS)}, not {fit!r}")
        return 2
    os.environ["TRASHURE_CACHE"] = str(default_cache_dir() / f"fit-{fit}")
    images.resize = FITS[fit]
    sys.argv = [str(CROSS_SOURCE)] + sys.argv[1:at] + sys.argv[at + 2:]
    bench = cross_source()
    save_rows = bench.save_rows
    # The saved rows say how their photos were fitted, beside the recipe's --set values.
    bench.save_rows = lambda args, overrides, rows: save_rows(args, {**overrides, "photo_fit": fit}, rows)
    return bench.main()


def cross_source():
    """bench/cross_source.py as a module."""
    spec = importlib.util.spec_from_file_location("cross_source", CROSS_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
