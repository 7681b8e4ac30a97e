"""Backgrounds for cut-and-paste augmentation: generated floors, tables, textures and clutter, and
photographed surfaces.

Every background is made from a seeded random generator, so no photo of any data source (a held-out one
included) lends its background to training. The only photos used are the two sample pictures that ship
inside scikit-learn (a temple and a flower), cropped and recoloured, for natural clutter, and 23 photographed
floors, pavings, walls and lawns from Sweet Home 3D (GPL-2.0-or-later; assets/surfaces/README.md).
"""

from __future__ import annotations

import colorsys
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from trashure.config import IMAGE_SIZE

SURFACES_DIR = Path(__file__).resolve().parent / "assets" / "surfaces"


def _random_colour(rng: np.random.Generator, saturation_max: float = 0.6) -> np.ndarray:
    # Real floors, tables and walls are mostly muted: low saturation is drawn far more often.
    h = rng.random()
    s = saturation_max * rng.beta(1.3, 3.5)
    v = rng.uniform(0.15, 0.95)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255


def fractal_noise(rng: np.random.Generator, size: int = IMAGE_SIZE, first_octave: int = 2,
                  octaves: int = 5, persistence: float = 0.55) -> np.ndarray:
    """Value noise summed over octaves, in [0, 1], shape (size, size)."""
    out = np.zeros((size, size), np.float32)
    amplitude, total = 1.0, 0.0
    for k in range(octaves):
        cells = min(first_octave * 2 ** k, size)
        grid = rng.random((cells, cells)).astype(np.float32)
        out += amplitude * np.asarray(Image.fromarray(grid, "F").resize((size, size), Image.BICUBIC))
        total += amplitude
        amplitude *= persistence
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1 - t[..., None]) + b * t[..., None]


def _floor(rng: np.random.Generator, size: int) -> np.ndarray:
    """Concrete, asphalt, carpet, gravel, soil: two colours through fractal noise of a random grain."""
    t = fractal_noise(rng, size, first_octave=int(rng.choice([2, 4, 8, 16, 32])), octaves=int(rng.integers(3, 6)))
    return _mix(_random_colour(rng), _random_colour(rng), t)


def _wood(rng: np.random.Generator, size: int) -> np.ndarray:
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    u = x * np.cos(angle) + y * np.sin(angle)
    warp = fractal_noise(rng, size, first_octave=2, octaves=3)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (rng.uniform(4, 18) * u + rng.uniform(0.5, 3) * warp))
    base = np.array(colorsys.hsv_to_rgb(rng.uniform(0.04, 0.12), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.85)),
                    np.float32) * 255
    return _mix(base, base * rng.uniform(0.55, 0.85), rings ** rng.uniform(0.5, 2.0))


def _tiles(rng: np.random.Generator, size: int) -> np.ndarray:
    tile = int(rng.integers(18, 96))
    grout = max(1, tile // int(rng.integers(12, 30)))
    base, line = _random_colour(rng), _random_colour(rng, 0.2)
    y, x = np.mgrid[0:size, 0:size]
    offset = (y // tile % 2) * (tile // 2) * int(rng.integers(0, 2))  # running bond for planks and bricks
    tx, ty = (x + offset) // tile, y // tile
    jitter = rng.normal(0, 12, (size // tile + 3, size // tile + 3, 3)).astype(np.float32)
    out = base + jitter[ty, tx]
    is_grout = ((x + offset) % tile < grout) | (y % tile < grout)
    out[is_grout] = line
    return out + 20 * (fractal_noise(rng, size, first_octave=16, octaves=3)[..., None] - 0.5)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A wall, a table top, a sheet of paper under uneven light."""
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = np.clip(0.5 + (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle), 0, 1)
    return _mix(_random_colour(rng), _random_colour(rng), t)


def _fabric(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textiles: a fine weave, or stripes and checks (tablecloths, blankets, carpets), at any angle."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    if rng.random() < 0.4:
        f = rng.uniform(0.3, 1.2)
        weave = 0.5 + 0.25 * np.sin(f * x) + 0.25 * np.sin(f * y * rng.uniform(0.8, 1.25))
        return _mix(_random_colour(rng, 0.8), _random_colour(rng, 0.8), weave)
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    out = np.broadcast_to(_random_colour(rng, 0.8), (size, size, 3)).copy()
    for coord in (u, v)[:int(rng.integers(1, 3))]:  # stripes one way, or checks both ways
        period = rng.uniform(12, 70)
        for _ in range(int(rng.integers(1, 4))):
            width, phase = rng.uniform(0.1, 0.4) * period, rng.uniform(0, period)
            band = ((coord + phase) % period) < width
            out[band] = 0.5 * out[band] + 0.5 * _random_colour(rng, 0.8)
    return out


@lru_cache(maxsize=1)
def _sample_photos() -> tuple[Image.Image, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(Image.fromarray(img) for img in load_sample_images().images)


def _photo(rng: np.random.Generator, size: int) -> np.ndarray:
    """A crop of one of scikit-learn's sample photos, flipped and recoloured: natural clutter."""
    photos = _sample_photos()
    photo = photos[int(rng.integers(len(photos)))]
    w, h = photo.size
    side = int(rng.uniform(0.25, 1.0) * min(h, w))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = np.asarray(photo.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side)), np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out[..., rng.permutation(3)]  # channel shuffle: new colours from the same shapes


def _clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """A floor or desk with a few unrelated shapes on it (papers, lids, stains)."""
    image = Image.fromarray(np.clip(_floor(rng, size), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 10))):
        x0, y0 = rng.integers(-size // 4, size, 2)
        w, h = rng.integers(size // 16, size // 3, 2)
        colour = tuple(int(c) for c in _random_colour(rng, 0.9))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([int(x0), int(y0), int(x0 + w), int(y0 + h)],
                                                                 fill=colour)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5)))), np.float32)


GENERATORS = {"floor": _floor, "wood": _wood, "tiles": _tiles, "gradient": _gradient, "fabric": _fabric,
              "photo": _photo, "clutter": _clutter}
WEIGHTS = {"floor": 0.3, "wood": 0.12, "tiles": 0.12, "gradient": 0.1, "fabric": 0.08, "photo": 0.13,
           "clutter": 0.15}


def random_background(rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """One background, float32 RGB 0-255, (size, size, 3), with uneven lighting and sensor noise."""
    names = list(GENERATORS)
    p = np.array([WEIGHTS[n] for n in names])
    return _lit(GENERATORS[names[int(rng.choice(len(names), p=p / p.sum()))]](rng, size), rng)


def texture_background(textures: tuple[Image.Image, ...], rng: np.random.Generator,
                       size: int = IMAGE_SIZE) -> np.ndarray:
    """A photographed surface (floor, paving, grass, wall) from textures, seen nearer or farther, turned,
    mirrored and re-lit: float32 RGB 0-255, (size, size, 3)."""
    texture = textures[int(rng.integers(len(textures)))]
    if rng.random() < 0.35:  # farther away: the pattern repeats smaller
        texture = Image.fromarray(np.tile(np.asarray(texture), (2, 2, 1)))
    w, h = texture.size
    side = int(rng.uniform(0.4, 1.0) * min(h, w))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = np.asarray(texture.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side)), np.float32)
    out = np.rot90(out, int(rng.integers(4)))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    mean = out.mean(axis=(0, 1))
    out = mean + (out - mean) * rng.uniform(0.7, 1.2)  # contrast
    out = out * rng.uniform(0.88, 1.12, 3) * rng.uniform(0.6, 1.2)  # white balance, exposure
    return _lit(np.ascontiguousarray(out), rng)


def _lit(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """out under uneven lighting, with sensor noise, clipped to 0-255."""
    size = out.shape[0]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.35) * ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle))
    out = out * light[..., None] + rng.normal(0, rng.uniform(0, 5), out.shape)
    return np.clip(out, 0, 255).astype(np.float32)


@lru_cache(maxsize=4)
def load_textures(folder: str = "") -> tuple[Image.Image, ...]:
    """Every photo in folder ("": the photographed surfaces shipped with the package, see their README),
    sorted by name so that draws are repeatable, as RGB."""
    where = Path(folder or SURFACES_DIR)
    if not where.is_dir():
        raise ValueError(f"the textures folder {where} does not exist")
    paths = sorted(p for p in where.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise ValueError(f"no texture photos (.jpg, .png) in {where}")
    return tuple(Image.open(p).convert("RGB") for p in paths)
