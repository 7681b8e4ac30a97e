"""Helpers shared by the pages: cached loaders and the sidebar. Widgets only; logic is in trashure/."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from trashure import access, settings
from trashure.catalog import display_name, model_card

if TYPE_CHECKING:  # type names only: the pages load the model and Pillow through trashure
    from PIL import Image

    from trashure.explain import Explainer
    from trashure.prediction import Classifier


def set_page_config() -> None:
    st.set_page_config(page_title="Trashure", page_icon="♻️", layout="wide")


def app_pages() -> list:
    """The dashboard's pages, in menu order."""
    return [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon="🗂️"),
        st.Page("pages/train.py", title="Train", icon="🏋️"),
        st.Page("pages/results.py", title="Results", icon="📊"),
        st.Page("pages/explore.py", title="Explore", icon="🔍"),
        st.Page("pages/classify.py", title="Classify", icon="📷"),
        st.Page("pages/export.py", title="Export", icon="📦"),
    ]


def use_app_navigation() -> None:
    """Give a page that Streamlit ran on its own the app's navigation and sidebar.

    Streamlit treats an app with a pages/ folder as an old-style multipage app until the main script
    has called st.navigation once, so a deep link (/train, /classify) as the first request to a fresh
    server runs that page without app.py: with every file of pages/ in the menu and no sidebar. Declaring
    our navigation here switches Streamlit to app.py; the one rerun on a session's first page load makes
    this page's widgets those of the app's own run, so a camera photo or a click is not lost later.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        set_page_config()
        st.navigation(app_pages())
        if not st.session_state.get("_trashure_nav_ready"):
            st.session_state["_trashure_nav_ready"] = True
            st.rerun()
        sidebar_ui()
    st.session_state["_trashure_nav_ready"] = True


def file_signature(path: Path) -> float:
    """A cache key that changes when a file is replaced."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def folder_signature(paths: Path | list[Path]) -> tuple:
    """A cache key that changes when photos are added to or removed from a class folder."""
    out = []
    for path in [paths] if isinstance(paths, Path) else paths:
        try:
            out.append(tuple(sorted((p.name, p.stat().st_mtime_ns) for p in Path(path).iterdir() if p.is_dir())))
        except OSError:
            out.append(())
    return tuple(out)


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def load_classifier(path: str, signature: float) -> Classifier:
    from trashure.prediction import Classifier

    return Classifier(path).warm_up()


@st.cache_resource(show_spinner="Loading TensorFlow for the heat maps…", max_entries=2)
def load_explainer(path: str, signature: float) -> Explainer:
    from trashure.explain import Explainer

    return Explainer(path)


@st.cache_data(show_spinner=False, max_entries=128)
def heat_map(model_path: str, signature: float, source: str | bytes) -> Image.Image:
    """The Grad-CAM overlay of a photo (a path or bytes) under a model, computed once."""
    return load_explainer(model_path, signature).explain(source).overlay


def active_classifier() -> Classifier:
    path = settings.active_model_path()
    return load_classifier(str(path), file_signature(path))


@st.cache_data(show_spinner="Checking every photo…", max_entries=4)
def dataset_report(paths: tuple[str, ...], signature: tuple) -> dict:
    from trashure.health import inspect_dataset

    return inspect_dataset(list(paths))


@st.cache_data(show_spinner=False, max_entries=4)
def dataset_listing(paths: tuple[str, ...], signature: tuple) -> dict[str, list[str]]:
    """Paths of the photos of each class, over every chosen folder (listing only, no decoding)."""
    from trashure.data import scan_sources

    dataset = scan_sources(list(paths))
    out: dict[str, list[str]] = {c: [] for c in dataset.classes}
    for r in dataset.records:
        out[r.class_name].append(str(r.path))
    return out


@st.cache_data(show_spinner=False, max_entries=512)
def thumbnail(path: str, size: int = 256) -> tuple[Image.Image, tuple[int, int]]:
    """(small RGB copy, original (width, height)) of a photo."""
    from trashure.images import open_image, to_rgb

    image = to_rgb(open_image(path))
    original = image.size
    image.thumbnail((size, size))
    return image, original


def sidebar_ui() -> None:
    with st.sidebar:
        st.markdown("### ♻️ Trashure studio")
        data_dirs = [d for d in settings.active_data_dirs() if Path(d).is_dir()]
        st.caption("Dataset")
        if data_dirs:
            st.markdown(" + ".join(f"📁 `{Path(d).name}`" for d in data_dirs),
                        help="\n".join(str(d) for d in data_dirs))
        else:
            st.markdown("📁 *none chosen* — see the Dataset page")
        model_path = settings.active_model_path()
        card = model_card(model_path)
        st.caption("Model")
        acc = card.get("metrics", {}).get("test_accuracy")
        label = display_name(model_path, card)
        st.markdown(f"🧠 `{label}`" + (f" · {acc:.1%} test accuracy" if acc is not None else ""),
                    help=str(model_path))
        if not model_path.is_file():
            st.warning(f"Model file missing: {model_path}")
        if access.read_only():
            st.caption("🔒 Read-only presenter mode")
