"""Why this prediction: Grad-CAM heat maps, computed only when asked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import cli
from trashure.config import DEFAULT_MODEL_PATH
from trashure.prediction import Classifier


@pytest.fixture(scope="module")
def explainer():
    from trashure.explain import Explainer

    return Explainer(DEFAULT_MODEL_PATH)


def test_the_heat_map_explains_the_verdict_the_app_gives(explainer, shared_data):
    photo = sorted((shared_data / "can").glob("*.jpg"))[0]
    why = explainer.explain(photo)
    verdict = Classifier(DEFAULT_MODEL_PATH).predict(photo)
    assert (why.label, why.confidence) == (verdict.label, pytest.approx(verdict.confidence, abs=1e-4))
    assert why.heatmap.shape == (7, 7) and why.heatmap.min() >= 0 and why.heatmap.max() == pytest.approx(1, abs=1e-3)
    width, height = Image.open(photo).size
    assert abs(why.overlay.size[0] / why.overlay.size[1] - width / height) < 0.02  # the photo's own aspect


def test_the_heat_map_follows_the_object(explainer, shared_data):
    """Mirror the photo and the evidence moves with it: the map is about where things are."""
    photo = Image.open(sorted((shared_data / "plastic_bottle").glob("*.jpg"))[3])
    plain, mirrored = explainer.explain(photo), explainer.explain(ImageOps.mirror(photo))
    assert plain.label == mirrored.label
    correlation = np.corrcoef(plain.heatmap.ravel(), mirrored.heatmap[:, ::-1].ravel())[0, 1]
    assert correlation > 0.8
    assert np.corrcoef(plain.heatmap.ravel(), mirrored.heatmap.ravel())[0, 1] < correlation


@pytest.mark.slow
def test_predict_explain_writes_one_overlay_per_photo(tmp_path, shared_data):
    photos = sorted((shared_data / "can").glob("*.jpg"))[:2]
    result = cli("predict", *photos, "--explain", tmp_path / "why")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "why").iterdir())
    assert written == sorted(f"{p.stem}.gradcam.png" for p in photos)
    assert all("heat map:" in line for line in result.stdout.splitlines())
