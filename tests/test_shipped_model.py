"""The committed model: its card tells the truth, and the app's fast path gives Keras' probabilities."""

import json

import pytest

from trashure.config import DEFAULT_MODEL_PATH
from trashure.prediction import Classifier
from trashure.weights import sha256_file

CARD = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())


def test_card_describes_the_model():
    assert CARD["classes"] == ["can", "glass_bottle", "other", "plastic_bottle"]
    # It looks twice (trashure.glimpse): photos in at twice the training size.
    size = 448 if CARD["training"].get("glimpse_side") else 224
    assert CARD["input"]["range"] == [0, 255] and CARD["input"]["shape"][1:] == [size, size, 3]
    assert CARD["training"]["mode"] == "fast" and CARD["data"]["split"].startswith("80/10/10")
    assert "stratified by class and by source" in CARD["data"]["split"]
    assert CARD["tflite"]["source_sha256"] == sha256_file(DEFAULT_MODEL_PATH), "stale TFLite twin"
    assert len(CARD["history"]) == CARD["training"]["epochs_run"]


@pytest.mark.slow
def test_evaluate_on_the_test_split_agrees_with_the_card(shipped_data):
    from trashure.evaluation import evaluate_folder

    result = evaluate_folder(DEFAULT_MODEL_PATH, shipped_data, "test")
    metrics = CARD["metrics"]
    assert result["n_images"] == metrics["test_images"] == CARD["data"]["split_sizes"]["test"]
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert result["loss"] == pytest.approx(metrics["test_loss"], abs=1e-3)
    assert result["confusion_matrix"] == metrics["confusion_matrix"]
    for source, m in metrics["per_source"].items():
        assert result["per_source"][source]["accuracy"] == pytest.approx(m["accuracy"], abs=1e-9)
        assert result["per_source"][source]["n_images"] == m["n_images"]


def test_the_readme_states_the_cards_per_source_figures():
    """The README's accuracy table is the card's, per source, with the card's Wilson intervals, and says
    for each part whether it meets issue #9's 95% floor: a model swap cannot leave a stale claim behind."""
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    per_source = CARD["metrics"]["per_source"]
    assert {"trashnet4", "mixed4"} <= set(per_source)
    for source in ("trashnet4", "mixed4"):
        m = per_source[source]
        low, high = m["accuracy_ci95"]
        floor = "met" if m["accuracy"] >= 0.95 else "not met"
        row = f"| {m['n_images']} | {100 * m['accuracy']:.2f}% | {100 * low:.1f}–{100 * high:.1f}% | {floor} |"
        assert row in readme, f"README's {source} row should read {row}"


def test_litert_path_matches_keras(shared_data):
    photos = sorted((shared_data / "can").glob("*.jpg"))[:10] + sorted((shared_data / "other").glob("*.jpg"))[:10]
    fast, reference = Classifier(DEFAULT_MODEL_PATH), Classifier(DEFAULT_MODEL_PATH, backend="keras")
    assert fast.backend == "litert"
    for photo in photos:
        a, b = fast.predict(photo), reference.predict(photo)
        assert a.label == b.label
        assert max(abs(a.probabilities[c] - b.probabilities[c]) for c in a.probabilities) < 1e-4


def test_litert_path_needs_no_tensorflow():
    import subprocess
    import sys

    from conftest import REPO

    script = ("import sys, io\nfrom trashure.prediction import Classifier\n"
              "from PIL import Image\n"
              "p = Classifier().predict(Image.new('RGB', (64, 48), (200, 40, 40)))\n"
              "print(p.label in ('can','glass_bottle','other','plastic_bottle'), 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["True", "False"]
