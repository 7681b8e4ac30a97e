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
    """Mirror a photo and the evidence moves with it: over 18 photos, the map of the mirrored photo, mirrored
    back, matches the original's far better than the mirrored map as it is."""
    aligned, misaligned = [], []
    for name in ("can", "glass_bottle", "plastic_bottle"):
        for path in sorted((shared_data / name).glob("*.jpg"))[:6]:
            photo = Image.open(path)
            plain, mirrored = explainer.explain(photo).heatmap, explainer.explain(ImageOps.mirror(photo)).heatmap
            aligned.append(np.corrcoef(plain.ravel(), mirrored[:, ::-1].ravel())[0, 1])
            misaligned.append(np.corrcoef(plain.ravel(), mirrored.ravel())[0, 1])
    assert np.median(aligned) > 0.7
    assert np.median(aligned) - np.median(misaligned) > 0.15


@pytest.mark.slow
def test_predict_explain_writes_one_overlay_per_photo(tmp_path, shared_data):
    photos = sorted((shared_data / "can").glob("*.jpg"))[:2]
    result = cli("predict", *photos, "--explain", tmp_path / "why")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "why").iterdir())
    assert written == sorted(f"{p.stem}.gradcam.png" for p in photos)
    assert all("heat map:" in line for line in result.stdout.splitlines())
