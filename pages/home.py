"""Home: what Trashure does, the active model's card and the dataset at a glance."""

from pathlib import Path

import streamlit as st

from pages.common import dataset_listing, folder_signature, use_app_navigation
from trashure import settings
from trashure.catalog import display_name, model_card
from trashure.config import CLASSES
from trashure.errors import TrashureError

use_app_navigation()


def header_ui() -> None:
    st.title("♻️ Trashure")
    st.markdown(
        "Point a camera at a piece of waste and Trashure tells you which bin it belongs to: "
        + ", ".join(f"**{c}**" for c in CLASSES) + ". "
        "A MobileNetV2 trained on real photos, running on this machine.")


def model_ui(card: dict, path: Path) -> None:
    st.subheader("Active model")
    if not card:
        st.warning(f"No model card beside `{path}`. Train one on the Train page or with "
                   "`python -m trashure train --data DATA_DIR`.")
        return
    metrics, data = card.get("metrics", {}), card.get("data", {})
    sizes = data.get("split_sizes", {})
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{metrics.get('test_accuracy', float('nan')):.1%}")
    cols[1].metric("Test loss", f"{metrics.get('test_loss', float('nan')):.3f}")
    cols[2].metric("Photos", f"{data.get('n_images', '–')}",
                   help="How many photos were used to train, to validate (early stopping) and to test.")
    cols[3].metric("Test photos", metrics.get("test_images", "–"))
    if sizes:
        cols[2].caption(f"{sizes.get('train', '–')} trained on · {sizes.get('val', '–')} validated · "
                        f"{sizes.get('test', '–')} tested")
    st.caption(f"**{display_name(path, card)}** · classes: {', '.join(card.get('classes', []))} · "
               f"{card.get('architecture', '')} · data: {data.get('folder', '?')}, {data.get('split', '')} "
               f"(seed {data.get('seed', '?')}) · trained {str(card.get('trained_at', '?'))[:10]}")


def dataset_ui(data_dirs: list[Path]) -> None:
    st.subheader("Dataset")
    data_dirs = [d for d in data_dirs if Path(d).is_dir()]
    if not data_dirs:
        st.info("No data folder yet. Choose one on the Dataset page, or start the app with "
                "`TRASHURE_DATA=/path/to/photos streamlit run app.py` (one sub-folder per class).")
        return
    try:
        listing = dataset_listing(tuple(str(d) for d in data_dirs), folder_signature(data_dirs))
    except TrashureError as exc:
        st.warning(str(exc))
        return
    counts = {c: len(files) for c, files in listing.items()}
    cols = st.columns(max(len(counts), 1))
    for col, (name, n) in zip(cols, counts.items()):
        col.metric(name, n)
    st.caption(" + ".join(f"`{d.name}`" for d in data_dirs)
               + f" · {sum(counts.values())} photos (not yet checked: see the Dataset page)")


def links_ui() -> None:
    st.subheader("Go to")
    cols = st.columns(5)
    cols[0].page_link("pages/dataset.py", label="Photos", icon="🗂️", help="Explore the photos")
    cols[1].page_link("pages/train.py", label="Train", icon="🏋️", help="Train a model")
    cols[2].page_link("pages/results.py", label="Results", icon="📊", help="Read and compare the results")
    cols[3].page_link("pages/classify.py", label="Classify", icon="📷", help="Classify a photo live")
    cols[4].page_link("pages/export.py", label="Export", icon="📦", help="Export a model for web and mobile apps")


header_ui()
links_ui()
model_path = settings.active_model_path()
model_ui(model_card(model_path), model_path)
dataset_ui(settings.active_data_dirs())
