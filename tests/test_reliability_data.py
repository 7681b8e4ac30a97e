"""A data folder holding every kind of bad or odd file: each is reported precisely, good ones are used,
and training refuses only when the data cannot support it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import cli, encoded, photo
from trashure.config import TrainConfig
from trashure.data import decode_dataset, scan_dataset
from trashure.errors import DatasetError
from trashure.training import prepare_data


def messy_folder(root: Path) -> dict[str, str]:
    """Builds the folder; returns {relative path: words its problem report must contain}."""
    base = photo((200, 40, 40), (60, 45))
    can, glass, other, plastic = (root / c for c in ("can", "glass_bottle", "other", "plastic_bottle"))
    for d in (can, glass, other, plastic):
        d.mkdir(parents=True)
    expected = {}
    # Bad files in can/
    (can / "zero.jpg").write_bytes(b"")
    expected["can/zero.jpg"] = "empty (0 bytes)"
    (can / "truncated.jpg").write_bytes(encoded(photo((1, 2, 3), (300, 200)))[:400])
    expected["can/truncated.jpg"] = "truncated"
    png = io.BytesIO()
    photo((9, 9, 9), (300, 200)).save(png, "PNG")
    (can / "truncated.png").write_bytes(png.getvalue()[:300])
    expected["can/truncated.png"] = "truncated"
    (can / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    expected["can/corrupt.jpg"] = "not an image"
    (can / "notes.jpg").write_text("shopping list: milk, eggs")
    expected["can/notes.jpg"] = "not an image"
    Image.new("1", (30000, 30000)).save(can / "bomb.png")
    expected["can/bomb.png"] = "pixel limit"
    # Good but odd files in can/
    base.save(can / "really_png.jpg", "PNG")
    base.save(can / "UPPER.JPG")
    base.save(can / "Mixed.JpEg")
    for mode in ("1", "L", "RGBA", "LA", "CMYK"):
        base.convert(mode).save(can / f"mode_{mode}.{'jpg' if mode in ('L', 'CMYK') else 'png'}")
    p = base.convert("P")
    p.info["transparency"] = 0
    p.save(can / "mode_P_transparent.png", transparency=0)
    Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257)).save(can / "mode_I16.png")
    Image.fromarray(np.asarray(base.convert("L"), np.float32)).save(can / "mode_F.tif")
    (can / "mode_F.tif").rename(can / "mode_F.webp")  # a TIFF named .webp: content decides
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        (can / f"exif_{orientation}.jpg").write_bytes(encoded(base, exif=exif.tobytes()))
    photo((1, 1, 1), (1, 1)).save(can / "one_pixel.png")
    photo((1, 1, 1), (4000, 3)).save(can / "very_wide.png")
    (can / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (can / "._UPPER.JPG").write_bytes(b"\x00\x05\x16\x07")
    (can / "deeper" / "deepest").mkdir(parents=True)
    base.save(can / "deeper" / "deepest" / "nested.jpg")
    (can / "link_to_photo.jpg").symlink_to(can / "UPPER.JPG")
    (can / "loop").symlink_to(can)
    expected["can/loop"] = "symlink loop"
    (can / "dangling.jpg").symlink_to(can / "gone.jpg")
    expected["can/dangling.jpg"] = "broken symlink"
    base.save(can / "bouteille_é_ü_日本.jpg")
    (can / "readme.txt").write_text("not a photo")
    # Enough good photos elsewhere; plastic_bottle stays empty.
    for i in range(12):
        photo((40, 160, 60), seed=i).save(glass / f"g{i}.jpg")
        photo((150, 120, 80), seed=i).save(other / f"o{i}.jpg")
    return expected


GOOD_CAN_FILES = 3 + 5 + 1 + 2 + 8 + 2 + 1 + 1 + 1  # odd-but-fine photos in can/ (see messy_folder)


def test_every_bad_file_is_reported_and_every_good_one_is_used(tmp_path):
    expected = messy_folder(tmp_path / "messy")
    dataset = scan_dataset(tmp_path / "messy")
    images = decode_dataset(dataset)
    problems = {p.path: p.reason for p in dataset.problems}
    for rel, words in expected.items():
        assert rel in problems, f"{rel} not reported"
        assert words in problems[rel], (rel, problems[rel])
    assert set(problems) == set(expected)
    assert dataset.counts() == {"can": GOOD_CAN_FILES, "glass_bottle": 12, "other": 12, "plastic_bottle": 0}
    assert images.shape == (GOOD_CAN_FILES + 24, 224, 224, 3)
    assert [p.path for p in dataset.ignored] == ["can/readme.txt"]
    relpaths = {r.relpath for r in dataset.records}
    assert "can/bouteille_é_ü_日本.jpg" in relpaths and "can/deeper/deepest/nested.jpg" in relpaths
    assert not any("/." in r or r.split("/")[-1].startswith(".") for r in relpaths)


def test_unreadable_permissions_are_reported(tmp_path, monkeypatch):
    # Tests run as root in CI, where chmod 000 does not stop reads; simulate the OS refusing instead.
    root = tmp_path / "perm"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    photo((1, 2, 3)).save(root / "a" / "locked.jpg")
    photo((1, 2, 3)).save(root / "b" / "fine.jpg")
    real_open = Image.open

    def guarded(fp, *args, **kwargs):
        if str(fp).endswith("locked.jpg"):
            raise PermissionError(13, "Permission denied")
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", guarded)
    dataset = scan_dataset(root)
    decode_dataset(dataset)
    assert [(p.path, "permission denied" in p.reason) for p in dataset.problems] == [("a/locked.jpg", True)]


def test_inspect_prints_a_readable_report_and_exits_0(tmp_path):
    expected = messy_folder(tmp_path / "messy")
    result = cli("inspect", tmp_path / "messy")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{GOOD_CAN_FILES + 24} readable photos in 4 classes" in out
    assert f"Unreadable files (skipped): {len(expected)}" in out
    for rel in expected:
        assert rel in out
    assert "Split: not possible" in out and "plastic_bottle has 0" in out
    report = json.loads(cli("inspect", tmp_path / "messy", "--json").stdout)
    assert len(report["unreadable"]) == len(expected)


def test_training_refuses_only_when_the_data_cannot_support_it(tmp_path):
    messy_folder(tmp_path / "messy")
    with pytest.raises(DatasetError, match="plastic_bottle has 0"):
        prepare_data(tmp_path / "messy", TrainConfig())
    # Remove the empty class: the bad files are skipped and training data is ready.
    (tmp_path / "messy" / "plastic_bottle").rmdir()
    data = prepare_data(tmp_path / "messy", TrainConfig())
    assert data.split.sizes()["train"] > 0 and data.dataset.classes == ("can", "glass_bottle", "other")


@pytest.mark.parametrize("case,words", [
    ("missing", "does not exist"), ("file", "is a file, not a folder"), ("empty", "no class sub-folders"),
    ("one_class", "only one class"), ("no_usable", "none of the photos"), ("too_few", "b has 2"),
])
@pytest.mark.slow
def test_folders_that_cannot_train(tmp_path, case, words):
    root = tmp_path / case
    if case == "file":
        root.write_text("x")
    elif case == "empty":
        root.mkdir()
    elif case == "one_class":
        (root / "a").mkdir(parents=True)
        for i in range(5):
            photo((1, 2, 3), seed=i).save(root / "a" / f"{i}.jpg")
    elif case == "no_usable":
        for c in ("a", "b"):
            (root / c).mkdir(parents=True)
            (root / c / "x.jpg").write_text("not a photo")
    elif case == "too_few":
        for c, n in (("a", 10), ("b", 2)):
            (root / c).mkdir(parents=True)
            for i in range(n):
                photo((1, 2, 3), seed=i).save(root / c / f"{i}.jpg")
    with pytest.raises(DatasetError, match=words):
        prepare_data(root, TrainConfig())
    result = cli("train", "--data", root, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_the_split_of_a_messy_folder_is_stable(tmp_path):
    messy_folder(tmp_path / "messy")
    (tmp_path / "messy" / "plastic_bottle").rmdir()
    from trashure.fingerprints import checked_dataset, photo_split

    a = prepare_data(tmp_path / "messy", TrainConfig()).split
    readable, fingerprints = checked_dataset(tmp_path / "messy")  # drops the unreadable photos, as training does
    assert len(readable.records) == len(a.train + a.val + a.test) and readable.problems
    b = photo_split(readable, fingerprints, 42)
    # A run's split is the split of the readable photos: the same photos in the same parts, every time.
    for part in ("train", "val", "test"):
        assert [r.relpath for r in a.part(part)] == [r.relpath for r in b.part(part)]
    assert prepare_data(tmp_path / "messy", TrainConfig()).split.test == a.test


def test_a_symlink_out_of_its_class_folder_is_skipped_with_the_reason(tmp_path):
    """glass_bottle/tocan -> ../can would label every can a glass bottle: never followed."""
    from conftest import make_dataset
    from trashure.data import scan_dataset

    root = make_dataset(tmp_path / "data", per_class=4)
    (root / "glass_bottle" / "tocan").symlink_to(root / "can", target_is_directory=True)
    (root / "glass_bottle" / "a_can.jpg").symlink_to(root / "can" / "can_000.jpg")
    (root / "glass_bottle" / "more").mkdir()
    (root / "glass_bottle" / "again").symlink_to(root / "glass_bottle" / "more", target_is_directory=True)
    photo((10, 200, 10)).save(root / "glass_bottle" / "more" / "inside.jpg")

    dataset = scan_dataset(root)
    glass = sorted(r.relpath for r in dataset.records if r.class_name == "glass_bottle")
    assert not [g for g in glass if "tocan" in g or "a_can" in g]
    assert len([g for g in glass if g.endswith("/inside.jpg")]) == 1  # a link inside the folder: followed, once
    reasons = {p.path: p.reason for p in dataset.problems}
    assert "symlink out of its class folder" in reasons["glass_bottle/tocan"]
    assert "symlink out of its class folder" in reasons["glass_bottle/a_can.jpg"]
    assert len([r for r in dataset.records if r.class_name == "can"]) == 4


def test_one_list_of_photo_types_for_training_and_predict(tmp_path):
    from conftest import make_dataset
    from trashure.data import scan_dataset
    from trashure.errors import ImageLoadError
    from trashure.images import load_array

    root = make_dataset(tmp_path / "data", per_class=3)
    for ext in ("gif", "tiff", "avif"):
        photo((200, 10, 10)).save(root / "can" / f"extra.{ext}")
    (root / "can" / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic")
    dataset = scan_dataset(root)
    cans = {r.relpath for r in dataset.records if r.class_name == "can"}
    assert {"can/extra.gif", "can/extra.tiff", "can/extra.avif"} <= cans
    assert [p.path for p in dataset.ignored] == ["can/phone.heic"]
    assert "not a supported photo type" in dataset.ignored[0].reason
    assert load_array(root / "can" / "extra.avif").shape == (224, 224, 3)
    with pytest.raises(ImageLoadError, match=r"\.heic is not a supported photo type"):
        load_array(root / "can" / "phone.heic")
