import io

import numpy as np
import pytest
from PIL import Image

from conftest import encoded, photo
from trashure.errors import ImageLoadError
from trashure.images import load_array, open_image, oriented_size, to_rgb


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"])
def test_every_mode_becomes_224_rgb(mode):
    base = photo((200, 40, 40), (80, 60))
    image = base.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(
        (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16 if mode == "I;16" else np.int32
                                                                      if mode == "I" else np.float32))
    if mode in ("I;16", "I", "F"):
        assert image.mode in {"I;16": {"I;16"}, "I": {"I", "I;32"}, "F": {"F"}}[mode]
    array = load_array(image)
    assert array.shape == (224, 224, 3) and array.dtype == np.uint8
    # The photo's grey level survives: 16-bit values are scaled, not clipped to white.
    assert 60 < array.mean() < 250


def test_16_bit_png_is_scaled_not_clipped():
    gray = np.full((10, 10), 30000, dtype=np.uint16)  # mid grey in 16 bits
    data = encoded(Image.fromarray(gray), "PNG")
    array = load_array(data)
    assert abs(int(array[0, 0, 0]) - round(30000 / 257)) <= 1


def test_alpha_becomes_white_background():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent red
    assert to_rgb(rgba).getpixel((5, 5)) == (255, 255, 255)
    p = Image.new("P", (20, 20), 0)
    p.putpalette([0, 0, 0] * 256)
    p.info["transparency"] = 0
    assert to_rgb(p).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    # A landscape photo with a red marker in its top-left corner, stored with each EXIF orientation.
    image = Image.new("RGB", (60, 40), (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(image, "JPEG", exif=exif.tobytes(), quality=95)
    upright = to_rgb(open_image(data))
    expected = Image.open(io.BytesIO(data))
    from PIL import ImageOps
    reference = ImageOps.exif_transpose(expected)
    assert upright.size == reference.size
    assert upright.size == ((40, 60) if orientation in (5, 6, 7, 8) else (60, 40))
    assert oriented_size(open_image(data)) == upright.size
    # Where the red marker ends up is exactly where exif_transpose puts it.
    diff = np.abs(np.asarray(upright, int) - np.asarray(reference.convert("RGB"), int)).max()
    assert diff == 0


def test_unreadable_inputs_raise_our_error(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(encoded(photo((1, 2, 3), (200, 150)), "JPEG")[:300])
    cases = {empty: "empty", text: "not an image", truncated: "truncated",
             tmp_path / "missing.jpg": "no such file", tmp_path: "folder"}
    for path, words in cases.items():
        with pytest.raises(ImageLoadError, match=words):
            load_array(path)
    with pytest.raises(ImageLoadError, match="empty"):
        load_array(b"")


def test_png_named_jpg_still_loads(tmp_path):
    path = tmp_path / "really_a_png.JPG"
    photo((10, 200, 10)).save(path, "PNG")
    assert load_array(path).shape == (224, 224, 3)


def test_decompression_bomb_is_refused_without_decoding():
    # A PNG header that declares 20000x20000 pixels: Pillow's limit refuses it before allocating.
    data = encoded(Image.new("1", (20000, 20000)), "PNG")
    with pytest.raises(ImageLoadError, match="pixel limit"):
        load_array(data)


def test_the_pixel_limit_holds_even_when_pillows_own_guard_is_off(monkeypatch):
    """Some libraries set Image.MAX_IMAGE_PIXELS = None; Trashure's own check still refuses before
    decoding (decoding would be caught: load() is never called)."""
    data = encoded(Image.new("1", (12000, 9000)), "PNG")  # 108 MP: above the limit, tiny as a file
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageLoadError, match="is above the 89,478,485-pixel limit"):
        load_array(data)
