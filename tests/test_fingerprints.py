"""Fingerprints (content hash, perceptual hash), their cache, near-duplicate groups and the leakage-safe split."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import cli, make_dataset
from trashure.config import TrainConfig
from trashure.data import Dataset, ImageRecord, split_dataset
from trashure.fingerprints import (Fingerprint, FingerprintCache, checked_dataset, fingerprint_file,
                                   near_duplicate_groups, photo_split)


def _records(sizes: list[int]) -> Dataset:
    records = [ImageRecord(path=f"/x/{c}/{i}.jpg", relpath=f"{c}/{i}.jpg", label=label, class_name=c, source="s")
               for label, (c, n) in enumerate(zip("abc", sizes)) for i in range(n)]
    return Dataset(root="/x", classes=tuple("abc"[:len(sizes)]), records=records)


def _part_of(split) -> dict[str, str]:
    return {r.relpath: name for name in ("train", "val", "test") for r in split.part(name)}


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(3, 40), min_size=2, max_size=3), data=st.data())
def test_every_group_lands_in_one_part_and_other_photos_keep_theirs(sizes, data):
    dataset = _records(sizes)
    n = len(dataset.records)
    pool = data.draw(st.permutations(range(n)))
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    groups = [list(pool[a:b]) for a, b in zip([0, *cuts], cuts) if b - a > 1]
    plain = _part_of(split_dataset(dataset, 5))
    safe = _part_of(split_dataset(dataset, 5, groups=groups))
    assert sorted(safe) == sorted(plain)  # every photo in exactly one part
    grouped = {i for g in groups for i in g}
    for g in groups:
        assert len({safe[dataset.records[i].relpath] for i in g}) == 1
    for i, r in enumerate(dataset.records):
        if i not in grouped:
            assert safe[r.relpath] == plain[r.relpath]


def _copy_landing_in(root, original, part: str, make) -> str:
    """Save make(original) under the first name the plain split puts in `part`; return its relative path."""
    from trashure.data import scan_sources

    for i in range(200):
        name = f"{original.parent.name}/copy_{i}.jpg"
        make(Image.open(original)).save(root / name, quality=80)
        dataset = scan_sources(root)
        if _part_of(split_dataset(dataset, 42))[name] == part:
            return name
        (root / name).unlink()
    raise AssertionError(f"no name lands in {part}")


def test_a_near_duplicate_planted_across_train_and_test_is_found_and_kept_in_one_part(tmp_path):
    root = make_dataset(tmp_path / "d", per_class=20)
    dataset, fingerprints = checked_dataset(root)
    plain = _part_of(split_dataset(dataset, 42))
    test_photo = next(r for r in dataset.records if plain[r.relpath] == "test")
    # A re-encoded, slightly resized copy (other bytes, same picture), named so that a plain split trains on it.
    copy = _copy_landing_in(root, test_photo.path, "train", lambda im: im.resize((60, 45)))
    dataset, fingerprints = checked_dataset(root)
    index = {r.relpath: i for i, r in enumerate(dataset.records)}
    groups = near_duplicate_groups(fingerprints)
    assert any({index[test_photo.relpath], index[copy]} <= set(g) for g in groups)
    assert fingerprints[index[copy]].sha256 != fingerprints[index[test_photo.relpath]].sha256
    safe = _part_of(photo_split(dataset, fingerprints, 42))
    assert safe[copy] == safe[test_photo.relpath]
    assert _part_of(photo_split(dataset, fingerprints, 42, leakage_safe=False))[copy] == "train"

    report = json.loads(cli("inspect", root, "--json").stdout)
    near = report["near_duplicates"]
    assert near["spread_plain"] >= 1 and near["spread_leakage_safe"] == 0
    assert "a plain split would spread" in cli("inspect", root).stdout


def test_a_run_splits_leakage_safe_and_a_model_from_before_keeps_its_plain_split():
    assert TrainConfig().leakage_safe_split and TrainConfig.for_mode("exact").leakage_safe_split
    older = TrainConfig.from_dict({"mode": "fast", "seed": 42})  # a config saved before the option existed
    assert older.leakage_safe_split is False
    assert TrainConfig.from_dict(TrainConfig().to_dict()).leakage_safe_split


def test_fingerprints_are_cached_and_a_changed_or_corrupt_entry_is_recomputed(tmp_path, monkeypatch):
    import trashure.fingerprints as fp_module

    root = make_dataset(tmp_path / "d", per_class=3)
    first = checked_dataset(root)[1]
    calls: list[str] = []
    real = fp_module.fingerprint_file
    monkeypatch.setattr(fp_module, "fingerprint_file", lambda p: calls.append(str(p)) or real(p))
    assert checked_dataset(root)[1] == first and calls == []  # all from the cache

    changed = root / "can" / "can_000.jpg"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(changed)
    os.utime(changed, ns=(1, 1))  # another size and time: stale
    again = checked_dataset(root)[1]
    assert calls == [str(changed)] and again != first

    cache = FingerprintCache(root)
    cache.path.write_text("{ not json")
    calls.clear()
    assert checked_dataset(root)[1] == again and len(calls) == 12  # unreadable cache: all recomputed
    stored = json.loads(cache.path.read_text())
    stored["photos"]["can/can_001.jpg"][2] = 7  # not a sha256
    cache.path.write_text(json.dumps(stored))
    calls.clear()
    checked_dataset(root)
    assert calls == [str(root / "can" / "can_001.jpg")]


def test_a_truncated_jpeg_fails_its_fingerprint_as_it_fails_decoding(tmp_path):
    from trashure.errors import ImageLoadError

    path = tmp_path / "whole.jpg"
    Image.effect_noise((640, 480), 60).convert("RGB").save(path, quality=95)
    assert isinstance(fingerprint_file(path), Fingerprint)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageLoadError, match="truncated"):
        fingerprint_file(cut)
    assert fingerprint_file(path).width == 640  # the shown size, not the draft's


def test_real_photos_have_few_near_duplicates_and_the_split_keeps_its_proportions(shared_data):
    """On trashnet4 the perceptual hash links few photos (it is not grouping the board itself), and the
    leakage-safe split stays 80/10/10 within a point."""
    dataset, fingerprints = checked_dataset(shared_data)
    groups = near_duplicate_groups(fingerprints)
    assert sum(len(g) for g in groups) < 0.05 * len(fingerprints)
    sizes = photo_split(dataset, fingerprints, 42).sizes()
    n = sum(sizes.values())
    assert abs(sizes["test"] / n - 0.1) < 0.01 and abs(sizes["val"] / n - 0.1) < 0.01
