"""Property test: whatever bytes arrive, the loader returns a 224x224 RGB array or raises ImageLoadError."""


import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import encoded, photo
from trashure.errors import ImageLoadError
from trashure.images import load_array


def _encoded(fmt: str) -> bytes:
    image = photo((120, 30, 200), (48, 36))
    return encoded(image.convert("P") if fmt == "GIF" else image, fmt)


SEEDS = [_encoded(f) for f in ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF")]


def check(data: bytes) -> None:
    try:
        array = load_array(data)
    except ImageLoadError as exc:
        assert str(exc)  # a message, never an empty error
        return
    assert array.shape == (224, 224, 3) and array.dtype == np.uint8


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
       st.one_of(st.none(), st.integers(0, 10_000)))
def test_mutated_real_images(seed, flips, cut):
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    check(bytes(data))


def test_unmutated_seeds_all_load():
    for data in SEEDS:
        assert load_array(data).shape == (224, 224, 3)
