"""Dataset: counts, split, samples, sizes, unreadable files and an augmentation preview."""

import random
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import dataset_listing, dataset_report, folder_signature, thumbnail, use_app_navigation
from trashure import access, charts, settings
from trashure.config import SHARED_DATA_DIR
from trashure.errors import TrashureError

use_app_navigation()


def known_folders(current: list[Path]) -> list[str]:
    """The folders to offer: the active ones, the shared data folders beside the repository, and the
    collection of photos saved from the Classify page."""
    from trashure.collect import default_collection_dir

    shared = sorted(str(p) for p in SHARED_DATA_DIR.iterdir() if p.is_dir()) if SHARED_DATA_DIR.is_dir() else []
    collected = [str(default_collection_dir())] if default_collection_dir().is_dir() else []
    return [p for p in dict.fromkeys([str(p) for p in current] + shared + collected) if access.allowed(p)]


def folder_ui() -> list[Path]:
    """The data folders to work on (merged by class name); returns the active ones."""
    current = settings.active_data_dirs()
    if access.read_only():
        st.caption("Data: " + (" + ".join(f"`{d}`" for d in current) or "none") +
                   " · 🔒 read-only presenter mode: the folders cannot be changed here.")
        return current
    with st.form("data_folder"):
        chosen = st.multiselect("Data folders (each with one sub-folder of photos per class; merged by class name)",
                                known_folders(current), default=[str(p) for p in current],
                                format_func=lambda p: f"{Path(p).name}  ·  {p}")
        extra = st.text_input("Add a folder", placeholder="/path/to/photos")
        if st.form_submit_button("Use these folders"):
            paths = [Path(p) for p in chosen] + ([Path(extra.strip()).expanduser()] if extra.strip() else [])
            bad = [p for p in paths if not p.is_dir()]
            if bad:
                st.error(f"`{bad[0]}` is not a folder.")
            elif not paths:
                st.error("Choose at least one folder.")
            else:
                try:
                    settings.set_active_data_dirs(paths)
                except TrashureError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
    if not current:
        st.info("No data folder yet. Enter one above, set `TRASHURE_DATA`, or place the shared data at "
                "`../shared/data/` beside the repository. Expected layout: "
                "`photos/can/*.jpg`, `photos/glass_bottle/*.jpg`, `photos/other/*.jpg`, `photos/plastic_bottle/*.jpg`.")
    return current


def overview_ui(report: dict) -> None:
    counts = report["counts"]
    cols = st.columns(4)
    cols[0].metric("Readable photos", report["n_images"])
    cols[1].metric("Classes", len(report["classes"]))
    ratio = report["imbalance_ratio"]
    cols[2].metric("Imbalance", f"{ratio:.1f}×" if ratio else "–", help="largest class / smallest class")
    cols[3].metric("Unreadable files", len(report["unreadable"]))
    left, right = st.columns(2)
    left.plotly_chart(charts.class_counts(counts))
    sizes = report["image_sizes"]
    if len(sizes) > 1:
        right.plotly_chart(charts.image_sizes(sizes))
    elif sizes:
        right.markdown(f"**Image size**: every photo is {sizes[0]['width']}×{sizes[0]['height']} pixels.")
    right.caption("Training sees every photo at 224×224 (squashed, not cropped); a model that looks twice takes "
                  "it at 448×448 and cuts its close-up from that.")
    if len(report["counts_per_source"]) > 1:
        st.subheader("Per source folder")
        st.caption("Each folder is a source: the split keeps every source's own 80/10/10, and Results reports "
                   "accuracy per source.")
        table = pd.DataFrame(report["counts_per_source"]).T
        table["total"] = table.sum(axis=1)
        st.dataframe(table)


def split_ui(report: dict) -> None:
    st.subheader("80/10/10 split (seed 42)")
    if report.get("training_error") and report["training_error"] != report["split_error"]:
        st.warning(report["training_error"])
    if report["split"] is None:
        st.warning(report["split_error"])
        return
    table = pd.DataFrame(report["split"]).T
    table["total"] = table.sum(axis=1)
    st.dataframe(table)


def samples_ui(listing: dict[str, list[str]]) -> None:
    st.subheader("Samples")
    cols = st.columns([3, 1, 1])
    classes = cols[0].multiselect("Classes", list(listing), default=list(listing))
    per_class = cols[1].slider("Per class", 1, 12, 6)
    if cols[2].button("🔀 Reshuffle"):
        st.session_state["sample_seed"] = random.randrange(1 << 30)
    rng = random.Random(st.session_state.get("sample_seed", 0))
    for name in classes:
        files = listing[name]
        picks = rng.sample(files, min(per_class, len(files)))
        st.markdown(f"**{name}** · {len(files)} photos")
        grid = st.columns(6)
        for i, path in enumerate(picks):
            try:
                image, (w, h) = thumbnail(path)
            except TrashureError as exc:
                grid[i % 6].warning(f"{Path(path).name}: {exc}")
                continue
            grid[i % 6].image(image, caption=f"{Path(path).parent.parent.name}/{Path(path).name} · {w}×{h}",
                              width="stretch")


def duplicates_ui(report: dict) -> None:
    exact, near = report["exact_duplicates"], report["near_duplicates"]
    if not near["n_groups"]:
        st.caption("No duplicates or near-duplicates. Suspect labels and a map of the photos: the Explore page.")
        return
    st.warning(f"{exact['n_groups']} groups of identical photos ({exact['conflicts']} with different labels) and "
               f"{near['n_groups']} groups of near-duplicates ({near['conflicts']} with different labels, "
               f"{near['across_folders']} across folders). A plain split would spread {near['spread_plain']} of "
               "them over training and validation/test; training keeps each group in one part (leakage-safe split).")
    st.dataframe(pd.DataFrame([{"files": ", ".join(g["files"]), "classes": ", ".join(g["classes"]),
                                "label conflict": g["conflict"],
                                "plain split": ", ".join(g.get("parts_plain", [])) or "–",
                                "leakage-safe split": ", ".join(g.get("parts_leakage_safe", [])) or "–"}
                               for g in near["groups"]]), hide_index=True)


def problems_ui(report: dict) -> None:
    with st.expander(f"Unreadable files ({len(report['unreadable'])}) and ignored files "
                     f"({len(report['ignored'])})", expanded=bool(report["unreadable"])):
        if report["unreadable"]:
            st.dataframe(pd.DataFrame(report["unreadable"]), hide_index=True)
        if report["ignored"]:
            st.dataframe(pd.DataFrame(report["ignored"]), hide_index=True)
        if not report["unreadable"] and not report["ignored"]:
            st.success("Every file in the class folders is a readable photo.")


def augmentation_ui(listing: dict[str, list[str]]) -> None:
    st.subheader("Augmentation preview")
    st.caption("One photo as training sees it, made by the training code itself. The default recipe cuts the "
               "object off a plain board and pastes it onto a generated floor, table or texture, adds camera "
               "noise, then the Keras layers flip it, turn it up to ±20° and change its brightness by up to ±20%.")
    options = [path for files in listing.values() for path in files[:50]]
    if not options:
        return
    cols = st.columns([3, 2, 1], vertical_alignment="bottom")
    path = cols[0].selectbox("Photo", options, format_func=lambda p: "/".join(Path(p).parts[-3:]))
    recipe = cols[1].radio("Recipe", ["default (fast mode)", "reference layers only (exact mode)"], horizontal=True)
    if cols[2].button("Show 6 views"):
        from trashure.augment import augmented_versions

        with st.spinner("Loading TensorFlow and augmenting…"):
            try:
                original, views = augmented_versions(Path(path), 6, seed=random.randrange(1 << 30),
                                                     offline=recipe.startswith("default"))
            except TrashureError as exc:
                st.error(f"{Path(path).name} cannot be augmented: {exc}")
                return
        grid = st.columns(7)
        grid[0].image(original, caption="the photo (224×224, as the model sees it)", width="stretch")
        for col, image in zip(grid[1:], views):
            col.image(image, caption="augmented", width="stretch")


st.title("🗂️ Dataset")
data_dirs = folder_ui()
if data_dirs:
    paths, signature = tuple(str(p) for p in data_dirs), folder_signature(data_dirs)
    try:
        report = dataset_report(paths, signature)
        listing = dataset_listing(paths, signature)
    except TrashureError as exc:
        st.error(str(exc))
        st.stop()
    overview_ui(report)
    split_ui(report)
    problems_ui(report)
    duplicates_ui(report)
    samples_ui(listing)
    augmentation_ui(listing)
