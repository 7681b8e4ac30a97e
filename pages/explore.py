"""Explore: a map of every photo's features, duplicates and leakage, suspect labels. Nothing is changed:
the page only reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import dataset_listing, file_signature, folder_signature, load_classifier, thumbnail, use_app_navigation
from trashure import charts, settings
from trashure.errors import TrashureError

use_app_navigation()


@st.cache_resource(show_spinner="Computing the features of every photo (kept on disk: next time is instant)…",
                   max_entries=4)
def features_of(paths: tuple[str, ...], signature: tuple) -> tuple[dict, np.ndarray, list[str]]:
    """(one row of facts a photo, features, content sha256s) of the active folders."""
    from trashure.health import photo_table

    return photo_table(list(paths))


@st.cache_data(show_spinner="Placing the photos on the map…", max_entries=8)
def coordinates(features: np.ndarray, method: str) -> np.ndarray:
    from trashure.health import embedding

    return embedding(features, method)


@st.cache_data(show_spinner="Classifying every photo with the active model…", max_entries=4)
def verdicts(model_path: str, signature: float, paths: tuple[str, ...]) -> list[str]:
    classifier = load_classifier(model_path, signature)
    return [p.label for p in classifier.predict_many(list(paths))]


@st.cache_data(show_spinner="Cross-validating a classifier on the features…", max_entries=4)
def suspects_of(features: np.ndarray, labels: tuple[int, ...], classes: tuple[str, ...]) -> list[dict]:
    from trashure.health import suspect_labels

    return suspect_labels(features, np.array(labels), classes)


def gallery_ui(paths: list[str], captions: list[str], columns: int = 6) -> None:
    cols = st.columns(columns)
    for i, (path, caption) in enumerate(zip(paths, captions)):
        try:
            cols[i % columns].image(thumbnail(path)[0], caption=caption, width="stretch")
        except TrashureError:
            cols[i % columns].caption(f"{caption} (not readable)")


def map_ui(facts: dict, features: np.ndarray) -> None:
    left, right = st.columns(2)
    method = left.radio("Map", ["pca", "tsne"], horizontal=True,
                        format_func=lambda m: {"pca": "PCA (instant)", "tsne": "t-SNE (neighbourhoods, ~20 s)"}[m])
    colour = right.radio("Colour by", ["class", "split", "source", "right/wrong"], horizontal=True)
    xy = coordinates(features, method)
    points = {"x": xy[:, 0], "y": xy[:, 1], "file": facts["file"], "index": list(range(len(xy))),
              "class": facts["class"], "split": facts["split"], "source": facts["source"]}
    if colour == "right/wrong":
        model_path = settings.active_model_path()
        try:
            said = verdicts(str(model_path), file_signature(model_path), tuple(facts["path"]))
        except TrashureError as exc:
            st.error(f"The active model cannot classify: {exc}")
            return
        points["right/wrong"] = ["right" if s == c else "wrong" for s, c in zip(said, facts["class"])]
    figure = charts.feature_map(points, colour, f"{len(xy)} photos, {method.upper()} of their MobileNetV2 features")
    event = st.plotly_chart(figure, on_select="rerun", selection_mode=("points", "box", "lasso"), key="feature_map")
    chosen = [p["customdata"][0] for p in (event.selection.points if event and event.selection else [])]
    st.caption("Photos sitting in another class's cluster are worth a look. Select points (lasso or box) to "
               "see their photos.")
    if chosen:
        shown = chosen[:24]
        st.markdown(f"**{len(chosen)} selected**" + (" (the first 24 shown)" if len(chosen) > 24 else ""))
        gallery_ui([facts["path"][i] for i in shown], [f"{facts['class'][i]} · {facts['file'][i]}" for i in shown])


def duplicates_ui(facts: dict, features: np.ndarray, shas: list[str]) -> None:
    from trashure.health import duplicate_groups, similar_feature_groups

    threshold = st.slider("Near-duplicate when the features' cosine similarity is at least", 0.90, 0.995, 0.97, 0.005)
    for title, groups in (("Exact duplicates (same bytes)", duplicate_groups(shas)),
                          ("Similar by the model's features (same object, crop or re-encode)", similar_feature_groups(features, threshold))):
        rows = [{"photos": len(g), "files": ", ".join(facts["file"][i] for i in g),
                 "classes": ", ".join(sorted({facts["class"][i] for i in g})),
                 "label conflict": len({facts["class"][i] for i in g}) > 1,
                 "across folders": len({facts["source"][i] for i in g}) > 1,
                 "parts": ", ".join(sorted({facts["split"][i] for i in g})),
                 "leaks (train and test)": len({facts["split"][i] for i in g} - {"–"}) > 1} for g in groups]
        st.subheader(f"{title}: {len(groups)} groups")
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True)
            worst = sorted(groups, key=lambda g: -len({facts["split"][i] for i in g}))[:3]
            for g in worst:
                gallery_ui([facts["path"][i] for i in g][:6], [f"{facts['split'][i]} · {facts['file'][i]}" for i in g][:6])
    st.caption("A group split over train and test lets the model be tested on a photo it trained on. The split "
               "a run makes keeps every group of near-duplicates by perceptual hash in one part (see the Dataset "
               "page); groups by features are looser, and worth a look when they leak.")


def suspects_ui(facts: dict, features: np.ndarray) -> None:
    suspects = suspects_of(features, tuple(facts["label"]), tuple(facts["classes"]))
    st.caption("Out-of-fold predictions of a classifier on the features (each photo judged by a model that did "
               "not see it), ranked by how unlikely the given label is. Nothing is moved: check them by eye.")
    if not suspects:
        st.success("No photo's label disagrees with the cross-validated prediction.")
        return
    st.markdown(f"**{len(suspects)} photos** whose label the others disagree with; the 24 least likely:")
    top = suspects[:24]
    gallery_ui([facts["path"][s["index"]] for s in top],
               [f"given {s['given']} ({s['given_probability']:.0%}) · looks like {s['predicted']}" for s in top])
    table = pd.DataFrame([{"file": facts["file"][s["index"]], **{k: v for k, v in s.items() if k != "index"}}
                          for s in suspects])
    st.download_button("⬇️ All suspects (CSV)", table.to_csv(index=False), "suspect_labels.csv", "text/csv")


st.title("🔍 Explore")
data_dirs = [d for d in settings.active_data_dirs() if Path(d).is_dir()]
if not data_dirs:
    st.info("Choose a data folder on the Dataset page first.")
    st.stop()
paths = tuple(str(d) for d in data_dirs)
try:
    dataset_listing(paths, folder_signature(data_dirs))
    facts, features, shas = features_of(paths, folder_signature(data_dirs))
except TrashureError as exc:
    st.error(str(exc))
    st.stop()
usable = ~np.isnan(features).any(axis=1)
if not usable.all():
    st.warning(f"{int((~usable).sum())} photos could not be read and are left out (see the Dataset page).")
map_tab, duplicates_tab, suspects_tab = st.tabs(["🗺️ Map", "👯 Duplicates and leakage", "🏷️ Suspect labels"])
with map_tab:
    map_ui(facts, np.nan_to_num(features))
with duplicates_tab:
    duplicates_ui(facts, np.nan_to_num(features), shas)
with suspects_tab:
    suspects_ui(facts, np.nan_to_num(features))
