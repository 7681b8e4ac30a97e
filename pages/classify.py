"""Classify: snap a photo, upload one or pick a sample; the verdict, its confidence and every class's
probability, beside the input. The input given last is the one classified."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.common import (active_classifier, file_signature, folder_signature, heat_map, load_classifier,
                          thumbnail, use_app_navigation)
from trashure import access, charts, settings
from trashure.catalog import display_name
from trashure.config import IMAGE_EXTENSIONS
from trashure.errors import TrashureError

use_app_navigation()

LAST_INPUT = "classify_last_input"  # "camera" | "upload" | "sample": the input the user gave last
SAMPLE = "classify_sample"


def remember(kind: str) -> None:
    st.session_state[LAST_INPUT] = kind


def choose_sample(path: str) -> None:
    st.session_state[SAMPLE] = path
    remember("sample")


@st.cache_data(show_spinner=False, max_entries=8)
def gallery_photos(paths: tuple[str, ...], signature: tuple) -> dict[str, list[str]]:
    from trashure.fingerprints import sample_photos

    return {c: [str(p) for p in ps] for c, ps in sample_photos(list(paths), per_class=3).items()}


@st.cache_data(show_spinner=False, max_entries=64)
def classify(model_path: str, signature: float, data: bytes) -> dict:
    """The verdict for these bytes under this model, computed once: moving the threshold only redraws."""
    from trashure.images import open_image

    classifier = load_classifier(model_path, signature)
    try:
        frames = getattr(open_image(data), "n_frames", 1)
        prediction = classifier.predict(data)
    except TrashureError as exc:
        return {"error": str(exc)}
    return {**prediction.to_dict(), "frames": frames}


def sample_gallery_ui() -> None:
    dirs = [d for d in settings.active_data_dirs() if d.is_dir()]
    if not dirs:
        st.caption("No data folder is active: choose one on the Dataset page to get sample photos.")
        return
    photos = gallery_photos(tuple(str(d) for d in dirs), folder_signature(dirs))
    st.caption("Photos from the test part of the active data folders (the model did not train on them). "
               "Click one to classify it.")
    for name, paths in photos.items():
        cols = st.columns(len(paths) + 1, vertical_alignment="center")
        cols[0].markdown(f"**{name}**")
        for col, path in zip(cols[1:], paths):
            try:
                col.image(thumbnail(path, 160)[0], width="stretch")
            except TrashureError:
                col.caption(f"{Path(path).name} (not readable)")
                continue
            col.button("Classify", key=f"sample-{path}", on_click=choose_sample, args=(path,), width="stretch")


def input_ui() -> tuple | None:
    """(kind, description, bytes, batch) of the input given last, or None; batch lists (name, bytes) of
    several uploads classified together."""
    camera_tab, upload_tab, sample_tab = st.tabs(["📷 Camera", "⬆️ Upload", "🖼️ Samples"])
    with camera_tab:
        shot = st.camera_input("Take a photo of one item", key="classify_camera", on_change=remember,
                               args=("camera",))
    with upload_tab:
        uploads = st.file_uploader("Upload photos (on a phone: take one with its camera); several at once are "
                                   "classified as a batch", key="classify_upload", accept_multiple_files=True,
                                   type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS), on_change=remember,
                                   args=("upload",)) or []
    with sample_tab:
        sample_gallery_ui()
    inputs = {"camera": shot, "upload": uploads[0] if uploads else None}
    last = st.session_state.get(LAST_INPUT)
    if last == "sample" and st.session_state.get(SAMPLE):
        path = Path(st.session_state[SAMPLE])
        try:
            return "sample", f"sample photo `{path.parent.name}/{path.name}`", path.read_bytes(), []
        except OSError as exc:
            st.error(f"The sample {path} cannot be read: {exc.strerror}")
            return None
    if last not in inputs or inputs[last] is None:
        last = next((k for k, v in inputs.items() if v is not None), None)  # the one still present
    if last is None:
        return None
    if last == "upload" and len(uploads) > 1:
        return "batch", f"{len(uploads)} uploads", b"", [(u.name, u.getvalue()) for u in uploads]
    given = inputs[last]
    description = "your camera photo" if last == "camera" else f"your upload `{given.name}`"
    return last, description, given.getvalue(), []


def batch_ui(model_path: Path, batch: list[tuple[str, bytes]], threshold: float) -> None:
    """Several uploads: one row each, and the table as a CSV."""
    import pandas as pd

    rows = []
    for name, data in batch:
        result = classify(str(model_path), file_signature(model_path), data)
        rows.append({"photo": name, "prediction": result.get("label", "–"),
                     "confidence": result.get("confidence"),
                     "uncertain": "yes" if result.get("confidence", 0) < threshold else "",
                     **{f"p({c})": result.get("probabilities", {}).get(c) for c in result.get("probabilities", {})},
                     "error": result.get("error", "")})
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="percent") for c in table.columns if c == "confidence" or c.startswith("p(")})
    st.download_button("⬇️ These verdicts (CSV)", table.to_csv(index=False), "trashure_verdicts.csv", "text/csv")


def collect_ui(data: bytes, kind: str, result: dict, classes: tuple[str, ...], model_name: str) -> None:
    """Save a photo the model got wrong (or was unsure of) for the next training run."""
    if access.read_only():
        return
    from trashure.collect import default_collection_dir, save_photo

    with st.expander("📥 Wrong or unsure? Save this photo for training"):
        folder = default_collection_dir()
        true_class = st.selectbox("What it really is", classes, index=classes.index(result["label"]),
                                  key="collect_class")
        if st.button("Save to the collection", key="collect_save"):
            try:
                saved = save_photo(data, true_class, classes, kind, result["label"], result["confidence"],
                                   model_name, folder)
            except TrashureError as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved as `{saved.relative_to(folder.parent)}`; the Dataset page lists `{folder.name}` "
                           "so the next training run can include it.")


def verdict_ui(result: dict, threshold: float) -> None:
    uncertain = result["confidence"] < threshold
    left, right = st.columns(2)
    left.metric("Prediction", result["label"])
    right.metric("Confidence", f"{result['confidence']:.1%}")
    if uncertain:
        st.warning(f"Uncertain: the best guess is below your {threshold:.0%} threshold. "
                   "Try a closer photo of one item.")
    st.plotly_chart(charts.probabilities(result["probabilities"], threshold), config={"displayModeBar": False})
    st.caption(f"Prediction took {result['seconds'] * 1000:.0f} ms (decode, resize, model).")
    if result.get("frames", 1) > 1:
        st.info(f"An animated image with {result['frames']} frames: the first frame was classified.")


st.title("📷 Classify")
try:
    active_classifier()
except TrashureError as exc:
    st.error(f"The active model cannot be used: {exc}")
    st.caption(f"Model path: `{settings.active_model_path()}`. Pick another on the Results page.")
    st.stop()

input_col, verdict_col = st.columns([1, 1], gap="large")
with input_col:
    given = input_ui()
with verdict_col:
    threshold = st.slider("Uncertain below", 0, 100, 60, 5, format="%d%%",
                          help="Confidence under which the verdict is marked uncertain. Moving it only redraws.") / 100
    if given is None:
        st.info("Take a photo with the camera, upload one, or pick a sample photo.")
    elif given[0] == "batch":
        st.markdown(f"**Classifying {given[1]}**")
        batch_ui(settings.active_model_path(), given[3], threshold)
    else:
        kind, description, data, _ = given
        model_path = settings.active_model_path()
        result = classify(str(model_path), file_signature(model_path), data)
        st.markdown(f"**Classifying {description}**")
        if "error" in result:
            name = description.replace("`", "")
            st.error(f"This file cannot be classified: {result['error'].replace('uploaded bytes', name)}")
        else:
            verdict_ui(result, threshold)
            collect_ui(data, kind, result, active_classifier().classes, display_name(model_path))
            why = st.toggle("Why? Show where the model looked", key="classify_why",
                            help="A Grad-CAM heat map: the parts of the photo that raised the predicted class "
                                 "(computed only when this is on).")
            if why:
                with st.spinner("Computing the heat map…"):
                    st.image(heat_map(str(model_path), file_signature(model_path), data), width=360,
                             caption=f"Where the evidence for {result['label']} is (yellow: most)")
            elif kind != "camera":  # the camera widget already shows its photo
                from trashure.images import open_image, to_rgb

                image = to_rgb(open_image(data))
                image.thumbnail((480, 480))
                st.image(image, caption=description.replace("`", ""), width=360)
