"""Export: a model for web and mobile apps, each format as a zip with its size and measured latency."""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import use_app_navigation
from trashure import settings
from trashure.config import DEFAULT_MODEL_PATH, default_runs_dir
from trashure.errors import TrashureError
from trashure.export import FORMATS
from trashure.runs import list_runs

use_app_navigation()

SHIPPED = "Shipped model (models/)"


def source_ui() -> tuple[str, Path, list[str]]:
    runs = [r for r in list_runs() if r.has_model and r.state == "done"]
    labels = [SHIPPED] + [r.id for r in runs]
    choice = st.selectbox("Model to export", labels)
    if choice == SHIPPED:
        return "shipped", DEFAULT_MODEL_PATH, [str(d) for d in settings.active_data_dirs()]
    run = next(r for r in runs if r.id == choice)
    return run.id, run.model_path, [str(d) for d in run.data_dirs()]


def options_ui() -> tuple[list[str], int] | None:
    with st.form("export_options"):
        formats = st.multiselect("Formats", list(FORMATS), default=list(FORMATS))
        scale = st.radio("Input the client feeds", [255, 1], horizontal=True,
                         format_func=lambda s: "pixels 0–255" if s == 255 else "pixels ÷ 255 (0–1)")
        if not st.form_submit_button("📦 Export", type="primary"):
            return None
    return formats, int(scale)


def export_ui(model_path: Path, out_dir: Path, formats: list[str], scale: int, data_dirs: list[str]) -> None:
    from trashure.export import export_model
    from trashure.runtimes import format_report
    from trashure.images import load_array

    with st.status("Exporting…", expanded=True) as status:
        try:
            export_model(model_path, out_dir, formats, scale, data_dirs or None, echo=st.write)
            st.write("measuring latency per format")
            photo = next(iter(sorted(Path(data_dirs[0]).rglob("*.jpg"))), None) if data_dirs else None
            image = load_array(photo) if photo else np.full((224, 224, 3), 128, np.uint8)
            st.session_state["export_report"] = (str(out_dir), format_report(out_dir, formats, image, scale))
            status.update(label="Export done", state="complete")
        except TrashureError as exc:
            status.update(label="Export failed", state="error")
            st.error(str(exc))


def downloads_ui() -> None:
    from trashure.export import zip_folder

    if "export_report" not in st.session_state:
        return
    out_dir, rows = st.session_state["export_report"]
    st.subheader("Formats")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    cols = st.columns(len(rows))
    for col, row in zip(cols, rows):
        folder = Path(out_dir) / row["format"]
        if folder.is_dir():
            col.download_button(f"⬇️ {row['format']}.zip", zip_folder(folder), file_name=f"{row['format']}.zip",
                                mime="application/zip", key=f"dl-{row['format']}")
    st.caption(f"Files are also in `{out_dir}`. Each zip holds the model, labels.txt and metadata.json.")


st.title("📦 Export")
st.caption("For web and mobile apps: Keras, SavedModel, TFLite float32 and int8, TF.js graph model. "
           "Each format is checked in its own runtime by the test suite.")
source_id, model_path, data_dirs = source_ui()
choice = options_ui()
if choice is not None:
    formats, scale = choice
    if not formats:
        st.warning("Choose at least one format.")
    else:
        export_ui(model_path, default_runs_dir() / "exports" / f"{source_id}-scale{scale}", formats, scale, data_dirs)
downloads_ui()
