"""Classify: snap a photo or upload one; the prediction, its confidence and every class's probability."""

import streamlit as st

from pages.common import active_classifier, use_app_navigation
from trashure import charts, settings
from trashure.errors import TrashureError
from trashure.images import open_image, to_rgb

use_app_navigation()


def input_ui():
    camera_tab, upload_tab = st.tabs(["📷 Camera", "⬆️ Upload"])
    with camera_tab:
        shot = st.camera_input("Take a photo of one item on a plain background")
    with upload_tab:
        uploaded = st.file_uploader("Or upload a photo", type=["jpg", "jpeg", "png", "bmp", "webp", "gif"])
    return shot or uploaded


def result_ui(prediction, threshold: float) -> None:
    uncertain = prediction.confidence < threshold
    st.metric("Prediction", prediction.label, delta=f"{prediction.confidence:.1%} confidence",
              delta_color="off" if uncertain else "normal")
    if uncertain:
        st.warning(f"Uncertain: the best guess is below your {threshold:.0%} threshold. "
                   "Try a closer photo on a plain background.")
    st.plotly_chart(charts.probabilities(prediction.probabilities, threshold))
    st.caption(f"Prediction took {prediction.seconds * 1000:.0f} ms (decode, resize, model).")


st.title("📷 Classify")
threshold = st.slider("Uncertain below", 0.0, 1.0, 0.6, 0.05, help="Confidence under which the verdict is 'uncertain'.")
photo = input_ui()
try:
    classifier = active_classifier()
except TrashureError as exc:
    st.error(f"The active model cannot be used: {exc}")
    st.caption(f"Model path: `{settings.active_model_path()}`. Pick another on the Results page.")
    st.stop()

if photo is not None:
    data = photo.getvalue()
    left, right = st.columns([1, 1])
    try:
        original = open_image(data)
        frames = getattr(original, "n_frames", 1)
        prediction = classifier.predict(data)
        image = to_rgb(original)
    except TrashureError as exc:
        st.error(f"This file cannot be classified: {exc}")
    else:
        left.image(image, caption=getattr(photo, "name", "photo"), width="stretch")
        if frames > 1:
            left.info(f"An animated image with {frames} frames: the first frame was classified.")
        with right:
            result_ui(prediction, threshold)
else:
    st.info("Take a photo with the camera or upload one to classify it.")
