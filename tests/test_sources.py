"""Several data folders: merged by class name, split per source, reported per source."""

import numpy as np
import pytest

from conftest import CLASSES, make_dataset
from trashure.config import TrainConfig
from trashure.data import scan_dataset, scan_sources, split_dataset
from trashure.errors import DatasetError
from trashure.evaluation import metrics_per_source, wilson_interval
from trashure.training.keras_parts import class_weights, photo_weights
from trashure.training.prepared import prepare_data


def test_two_folders_merge_by_class_name(tmp_path):
    a = make_dataset(tmp_path / "alpha", per_class=10)
    b = make_dataset(tmp_path / "beta", per_class=20, classes=("can", "other"))  # lacks two classes
    ds = scan_sources([a, b])
    assert ds.classes == CLASSES
    assert ds.counts() == {"can": 30, "glass_bottle": 10, "other": 30, "plastic_bottle": 10}
    assert ds.counts_per_source() == {"alpha": {c: 10 for c in CLASSES},
                                      "beta": {"can": 20, "glass_bottle": 0, "other": 20, "plastic_bottle": 0}}
    # The same class name in both folders is one label; each photo keeps its own folder.
    assert {r.label for r in ds.records if r.class_name == "other"} == {2}
    assert {r.source for r in ds.records if r.class_name == "other"} == {"alpha", "beta"}
    for r in ds.records:
        assert r.path == ds.path_of(r.source, r.relpath) and r.path.is_file()
    # Two photos with the same relative path in two folders are two photos.
    assert len({(r.source, r.relpath) for r in ds.records}) == len(ds.records) == 80


def test_the_split_is_stratified_by_source_and_matches_each_folder_alone(tmp_path):
    a = make_dataset(tmp_path / "alpha", per_class=30)
    b = make_dataset(tmp_path / "beta", per_class=10, classes=("can", "other"))
    merged = split_dataset(scan_sources([a, b]), seed=7)
    alone = split_dataset(scan_dataset(a), seed=7)
    for part in ("train", "val", "test"):
        assert ({r.relpath for r in merged.part(part) if r.source == "alpha"}
                == {r.relpath for r in alone.part(part)})
    beta_test = [r for r in merged.test if r.source == "beta"]
    assert sorted(r.class_name for r in beta_test) == ["can", "other"]  # 10% of each of beta's classes


def test_a_folder_whose_classes_match_no_other_folder_is_refused(tmp_path):
    a = make_dataset(tmp_path / "alpha", per_class=3)
    b = make_dataset(tmp_path / "beta", per_class=3, classes=("cat", "dog"))
    with pytest.raises(DatasetError, match=r"class folders of beta \(cat, dog\) match none of the other folders"):
        scan_sources([a, b])
    c = make_dataset(tmp_path / "gamma", per_class=3, classes=("Can", "other"))
    with pytest.raises(DatasetError, match="spelt differently.*Can / can"):
        scan_sources([a, c])


def test_two_folders_with_the_same_name_are_refused(tmp_path):
    a = make_dataset(tmp_path / "one" / "photos", per_class=3)
    b = make_dataset(tmp_path / "two" / "photos", per_class=3)
    with pytest.raises(DatasetError, match="same name"):
        scan_sources([a, b])


def test_a_licence_folder_is_not_a_class(tmp_path):
    a = make_dataset(tmp_path / "alpha", per_class=3)
    (a / "LICENSES").mkdir()
    (a / "LICENSES" / "ATTRIBUTION.txt").write_text("CC BY 4.0")
    assert scan_sources([a]).classes == CLASSES


def test_prepare_data_can_leave_a_source_out(tmp_path):
    a = make_dataset(tmp_path / "alpha", per_class=10)
    b = make_dataset(tmp_path / "beta", per_class=10)
    data = prepare_data([a, b], TrainConfig(), keep=lambda r: r.source != "beta")
    assert {r.source for part in ("train", "val", "test") for r in data.split.part(part)} == {"alpha"}
    assert set(data.sources("test")) == {"alpha"}


def test_balanced_class_weights_give_every_class_the_same_total():
    labels = np.array([0] * 60 + [1] * 20 + [2] * 20)
    w = class_weights(labels, 4, "balanced")
    totals = [w[c] * (labels == c).sum() for c in range(3)]
    assert np.allclose(totals, totals[0]) and w[3] == 0
    assert np.all(class_weights(labels, 4, "none") == 1)


def test_weights_balanced_by_source_share_each_class_by_the_square_root_of_its_sources_photos():
    # cans from two folders (10 and 40 photos), bottles from one: like trashnet4's cans beside cans-web's
    labels = np.array([0] * 10 + [0] * 40 + [1] * 30)
    sources = np.array(["board"] * 10 + ["web"] * 40 + ["board"] * 30)
    w = photo_weights(labels, sources, 2, "balanced_by_source")
    board_cans, web_cans, bottles = w[labels == 0][:10].sum(), w[labels == 0][10:].sum(), w[labels == 1].sum()
    assert np.isclose(web_cans / board_cans, 2.0)  # sqrt(40 / 10), not 4 as by photo count
    assert np.isclose(board_cans + web_cans, bottles)
    assert np.isclose(w.sum(), len(labels))  # the same total as "balanced": only the shares move
    assert np.array_equal(photo_weights(labels, sources, 2, "balanced"), class_weights(labels, 2, "balanced")[labels])
    one_source = np.array(["board"] * len(labels))  # one folder: nothing to balance, the same as "balanced"
    assert np.allclose(photo_weights(labels, one_source, 2, "balanced_by_source"),
                       photo_weights(labels, one_source, 2, "balanced"))


def test_metrics_per_source_and_wilson_interval():
    probs = np.eye(2)[[0, 0, 1, 1, 0]]
    labels = np.array([0, 1, 1, 1, 0])
    per = metrics_per_source(probs, labels, ["a", "a", "b", "b", "b"], ("x", "y"))
    assert per["a"]["accuracy"] == 0.5 and per["b"]["accuracy"] == 1.0 and per["b"]["n_images"] == 3
    low, high = wilson_interval(90, 100)
    assert abs(low - 0.8256) < 1e-3 and abs(high - 0.9448) < 1e-3  # the textbook Wilson interval
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_sample_photos_come_from_unseen_parts_in_turn_from_each_source(tmp_path):
    from trashure.fingerprints import sample_photos

    import shutil

    a, b = make_dataset(tmp_path / "a", per_class=20), make_dataset(tmp_path / "b", per_class=20, salt="b")
    split = split_dataset(scan_sources([a, b]))
    unseen = {r.path for r in split.test + split.val}
    # A copy in b of a photo of a: a model might have trained on either, so neither is shown.
    first = sample_photos([a, b], per_class=4)["can"][0]
    shutil.copy(first, b / "can" / "copy.jpg")
    samples = sample_photos([a, b], per_class=4)
    assert first not in samples["can"] and b / "can" / "copy.jpg" not in samples["can"]
    assert list(samples) == list(CLASSES)
    for name, paths in samples.items():
        assert len(paths) == 4 and all(p in unseen for p in paths)
        assert {p.parent.parent.name for p in paths} == {"a", "b"}  # both sources shown
        assert all(p.parent.name == name for p in paths)
    assert sample_photos([a, b], per_class=4) == samples  # the same gallery on every visit
