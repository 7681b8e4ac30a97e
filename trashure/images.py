"""Reading photos: any common format and Pillow mode, EXIF orientation, to a 224x224 RGB array.

Every path that turns a photo into model input (training, evaluation, the CLI, the app) goes through
`load_array`, so they all see identical pixels.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from trashure.config import IMAGE_EXTENSIONS, IMAGE_SIZE
from trashure.errors import ImageLoadError

ImageSource = Union[str, Path, bytes, bytearray, Image.Image]

# Refuse photos above ~90 megapixels before decoding them (Pillow's own bomb limit), so a file that
# declares a huge size cannot exhaust memory. A 200 MP phone photo is still far below the hard limit.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
BACKGROUND = (255, 255, 255)  # transparent areas become white, like the plain backgrounds we train on


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, Image.Image):
        return "image"
    return "uploaded bytes"


def _too_big(name: str, size: str) -> str:
    return (f"{name}: {size} is above the {MAX_PIXELS:,}-pixel limit (a decompression bomb or a huge "
            "scan); refused without decoding. Resize it first.")


def open_image(source: ImageSource, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode a photo; raise ImageLoadError with the reason if that fails.

    draft: decode a JPEG at a reduced scale no smaller than this size (every byte is still read, so a
    truncated file still fails); `oriented_size` still reports the full size."""
    if isinstance(source, Image.Image):
        return source
    name = _describe(source)
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise ImageLoadError(f"{name}: the file is empty (0 bytes).")
            fp: object = io.BytesIO(bytes(source))
        else:
            path = Path(source)
            try:
                exists = path.exists()
            except OSError as exc:  # e.g. a file name longer than the file system allows
                raise ImageLoadError(f"{name[:120]}…: cannot be opened ({exc.strerror}).") from None
            if not exists:
                raise ImageLoadError(f"{name}: no such file.")
            if path.is_dir():
                raise ImageLoadError(f"{name}: is a folder, not a photo.")
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ImageLoadError(f"{name}: {path.suffix or 'no extension'} is not a supported photo type "
                                     f"({', '.join(sorted(IMAGE_EXTENSIONS))}).")
            if path.stat().st_size == 0:
                raise ImageLoadError(f"{name}: the file is empty (0 bytes).")
            fp = path
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp)  # type: ignore[arg-type]
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageLoadError(_too_big(name, f"{width}x{height} pixels"))
            image.seek(0)  # animated GIF/WebP: the first frame
            if draft is not None:
                image.draft("RGB", draft)
                image.info["full_size"] = (width, height)
            image.load()
        return image
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not an image Pillow can read (a corrupt file, or not a photo at all); "
                             "remove it or replace it with a JPEG/PNG.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(_too_big(name, str(exc).split(" exceeds")[0].replace("Image size ", ""))) from None
    except PermissionError:
        raise ImageLoadError(f"{name}: permission denied; make the file readable.") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageLoadError(f"{name}: damaged or truncated image ({exc}); re-save it from the original "
                             "or remove it.") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB from any Pillow mode: EXIF orientation applied, alpha on white, 16-bit scaled."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the photo
        pass
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_bit_depth_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _high_bit_depth_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's own convert("L") clips 16-bit values at 255, which turns most photos white.
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        values = (np.nan_to_num(values, nan=lo) - lo) * scale
    else:
        values = values / 257.0 if values.max(initial=0) > 255 else values
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def resize(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Squash to size x size with bilinear filtering, as the reference generator's target_size did."""
    if image.size == (size, size):
        return image
    return image.resize((size, size), Image.Resampling.BILINEAR)


def load_array(source: ImageSource, size: int = IMAGE_SIZE) -> np.ndarray:
    """A photo as a (size, size, 3) uint8 RGB array; raises ImageLoadError with the reason."""
    return np.asarray(resize(to_rgb(open_image(source)), size), dtype=np.uint8)


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as the photo is shown, after its EXIF orientation (at full size after a draft)."""
    width, height = image.info.get("full_size", image.size)
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
