"""Data health and the feature cache: duplicates, suspect labels, the photo table; Grad-CAM on the object."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import make_dataset
from trashure.config import DEFAULT_MODEL_PATH


def test_a_truncated_or_foreign_cache_entry_is_recomputed(tmp_path):
    from trashure.features import FeatureCache, pooled_features

    root = make_dataset(tmp_path / "d", per_class=2)
    paths = sorted(root.rglob("*.jpg"))
    cache = FeatureCache(tmp_path / "cache")
    first, shas = pooled_features(paths, cache)
    entry = cache._path(shas[0])
    entry.write_bytes(entry.read_bytes()[:60])  # truncated
    np.save(cache._path(shas[1]), np.zeros(7, np.float32))  # wrong shape
    assert cache.get(shas[0]) is None and cache.get(shas[1]) is None
    again, _ = pooled_features(paths, cache)
    np.testing.assert_allclose(again, first, atol=1e-6)
    assert cache.get(shas[0]) is not None  # rewritten


def test_the_photo_table_has_one_row_per_photo_and_the_split_a_run_makes(tmp_path):
    from trashure.config import TrainConfig
    from trashure.health import photo_table
    from trashure.training.prepared import prepare_data

    root = make_dataset(tmp_path / "d", per_class=10)
    (root / "can" / "broken.jpg").write_bytes(b"not a photo")  # unreadable: no row
    table, features, shas = photo_table(root)
    assert len({len(v) for k, v in table.items() if k != "classes"}) == 1 and len(table["file"]) == 40
    assert features.shape == (40, 1280) and len(shas) == 40 and "d/can/broken.jpg" not in table["file"]
    split = prepare_data(root, TrainConfig()).split
    expected = {f"d/{r.relpath}": part for part in ("train", "val", "test") for r in split.part(part)}
    assert dict(zip(table["file"], table["split"])) == expected


@pytest.mark.slow
def test_photos_planted_with_the_wrong_label_rank_among_the_top_suspects(tmp_path, shared_data):
    """Three photos of trashnet4 (drawn with a fixed seed) moved into another class's folder each rank in
    the top 2% of all 1,875 photos by how unlikely their given label is."""
    import random

    from trashure.health import photo_table, suspect_labels

    root = tmp_path / "real"
    shutil.copytree(shared_data, root)
    rng, planted = random.Random(0), []
    for source, target in (("can", "plastic_bottle"), ("glass_bottle", "other"), ("plastic_bottle", "can")):
        photo = rng.choice(sorted((root / source).glob("*.jpg")))
        shutil.move(photo, root / target / f"planted_{photo.name}")
        planted.append(f"real/{target}/planted_{photo.name}")
    table, features, _ = photo_table(root)
    suspects = [table["file"][s["index"]] for s in suspect_labels(features, np.array(table["label"]),
                                                                   table["classes"])]
    top = suspects[:int(0.02 * len(table["file"]))]
    assert all(p in top for p in planted), [suspects.index(p) if p in suspects else None for p in planted]


@pytest.mark.slow
def test_grad_cam_mass_lies_mostly_on_the_object(shared_data):
    """On trashnet4's white board the object is the pixels that differ from the board: the heat map puts
    more of its mass there than the object's share of the photo."""
    from trashure.explain import Explainer
    from trashure.images import load_array
    from trashure.offline_augment import board_mask

    explainer = Explainer(DEFAULT_MODEL_PATH)
    ratios = []
    for name in ("can", "glass_bottle", "plastic_bottle"):
        for path in sorted((shared_data / name).glob("*.jpg"))[:8]:
            mask = board_mask(load_array(path))
            if mask is None:
                continue
            heat = Image.fromarray((explainer.explain(path).heatmap * 255).astype(np.uint8))
            cam = np.asarray(heat.resize((224, 224), Image.BICUBIC), np.float32)
            inside = (cam * mask).sum() / max(cam.sum(), 1e-6)
            ratios.append(inside / max(mask.mean(), 1e-6))
    assert len(ratios) >= 12
    assert np.median(ratios) > 1.2  # the evidence concentrates on the object
