"""Shared fixtures: small generated photos for unit tests; the real TrashNet copy when it is there."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("TRASHURE_SHARED_DATA", REPO.parent / "shared" / "data" / "trashnet4"))
CLASSES = ("can", "glass_bottle", "other", "plastic_bottle")
CLASS_COLOURS = {"can": (200, 40, 40), "glass_bottle": (40, 160, 60), "other": (150, 120, 80),
                 "plastic_bottle": (60, 90, 220)}


REQUIRE_ALL = os.environ.get("TRASHURE_REQUIRE_ALL") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under TRASHURE_REQUIRE_ALL=1 (CI) a test that skips because something it needs is missing fails:
    a green CI means every test ran. A plain `make test` may skip, saying why."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but TRASHURE_REQUIRE_ALL=1 requires every test to run: {reason}"


@pytest.fixture(scope="session", autouse=True)
def hermetic_cache(tmp_path_factory) -> Path:
    """Conversions and caches go to a temporary folder, never to the user's ~/.cache/trashure."""
    folder = tmp_path_factory.mktemp("trashure-cache")
    os.environ["TRASHURE_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"real photos not found at {SHARED_DATA} (../shared/data/trashnet4 beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shipped_data() -> list[Path]:
    """The data folders the shipped model was trained on (its card names them), from ../shared/data."""
    import json

    card = json.loads((REPO / "models" / "shipped" / "mobilenetv2_trashure.json").read_text())
    folders = [SHARED_DATA.parent / name for name in card["data"].get("folders", [card["data"]["folder"]])]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        pytest.skip(f"the shipped model's data folders are not beside the repo: {', '.join(missing)}")
    return folders


def cli(*args, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 600):
    """`python -m trashure ARGS` as a user runs it: (returncode, stdout, stderr) in a CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "trashure", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def encoded(image: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    """A picture as the bytes of a file of this format."""
    import io

    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    """A small photo-like image: a coloured object on a light, noisy background."""
    rng = np.random.default_rng(seed)
    w, h = size
    # Uneven light (a random 6x6 field, smoothly enlarged): photos differ in their coarse structure, as real
    # ones do; with a flat background a perceptual hash would call many of them near-duplicates.
    light = Image.fromarray(rng.integers(0, 120, (6, 6)).astype(np.uint8), "L").resize((w, h), Image.BILINEAR)
    pixels = (np.full((h, w, 3), 123, dtype=np.int16) + np.asarray(light, np.int16)[..., None]
              + rng.integers(-12, 12, (h, w, 3)))
    x0, y0 = rng.integers(0, max(w // 3, 1)), rng.integers(0, max(h // 3, 1))
    pixels[y0:y0 + h // 2, x0:x0 + w // 2] = np.array(colour) + rng.integers(-20, 20, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def make_dataset(root: Path, per_class: int = 10, classes=CLASSES, fmt: str = "JPEG", salt: str = "") -> Path:
    """Class folders of synthetic photos; the same arguments make the same photos (salt: other ones)."""
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
            # crc32, not hash(): the same photos in every interpreter, so a failure can be reproduced.
            photo(CLASS_COLOURS.get(c, (128, 128, 128)), seed=zlib.crc32(f"{salt}{c}/{i}".encode()) % 10_000).save(
                root / c / f"{c}_{i:03d}.{ext}", fmt)
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data", per_class=10)
