"""Export: a model for web and mobile apps, each format as a zip with its size and measured latency."""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import use_app_navigation
from trashure import access, settings
from trashure.catalog import ModelEntry, model_entries
from trashure.config import default_exports_dir
from trashure.errors import TrashureError
from trashure.export import FORMATS

use_app_navigation()

def source_ui() -> ModelEntry | None:
    """The model to export, the active one first selected."""
    entries = [e for e in model_entries() if e.state() == "done" and e.path.is_file()]
    if not entries:
        st.info("No model to export yet: train one on the Train page.")
        return None
    active = settings.active_model_path().resolve()
    index = next((i for i, e in enumerate(entries) if e.path.resolve() == active), 0)
    return st.selectbox("Model to export", entries, index=index, format_func=lambda e: e.name)


def options_ui() -> tuple[list[str], int] | None:
    with st.form("export_options"):
        formats = st.multiselect("Formats", list(FORMATS), default=list(FORMATS))
        scale = st.radio("Input the client feeds", [255, 1], horizontal=True,
                         format_func=lambda s: "pixels 0–255" if s == 255 else "pixels ÷ 255 (0–1)")
        if not st.form_submit_button("📦 Export", type="primary"):
            return None
    return formats, int(scale)


def export_ui(entry: ModelEntry, out_dir: Path, formats: list[str], scale: int) -> None:
    from trashure.export import ExportError, export_model, input_size, test_set
    from trashure.images import load_array
    from trashure.runtimes import format_report

    data_dirs = [str(d) for d in entry.data_dirs(settings.active_data_dirs())]
    with st.status("Exporting…", expanded=True) as status:
        try:
            export_model(entry.path, out_dir, formats, scale, data_dirs or None, echo=st.write)
            try:
                st.write("reading the test part of the model's split, to score every format on it")
                test = test_set(entry.card(), data_dirs)
            except ExportError as exc:
                test = None
                st.write(f"no test accuracy per format: {exc}")
            st.write("measuring latency and test accuracy per format")
            photo = next(iter(sorted(Path(data_dirs[0]).rglob("*.jpg"))), None) if data_dirs else None
            size = input_size(entry.card())
            image = load_array(photo, size) if photo else np.full((size, size, 3), 128, np.uint8)
            st.session_state["export_report"] = (str(out_dir), format_report(out_dir, formats, image, scale, test=test))
            status.update(label="Export done", state="complete")
        except TrashureError as exc:
            status.update(label="Export failed", state="error")
            st.error(str(exc))


def report_table(rows: list[dict]) -> pd.DataFrame:
    """Readable headers and no empty cells."""
    def latency(row: dict) -> str:
        if row.get("p50_ms") is None:
            return "–"
        return (f"{row['p50_ms']:.1f} (p90 {row['p90_ms']:.1f})" if row.get("p90_ms") is not None
                else f"{row['p50_ms']:.1f} (mean of 20)")

    def percent(value) -> str:
        return f"{value:.2%}" if value is not None else "–"

    return pd.DataFrame([{
        "Format": row["format"], "Runtime": row["runtime"], "Size (MB)": f"{row['size_mb']:.1f}",
        "Latency, one photo (ms)": latency(row), "Test accuracy": percent(row.get("test_accuracy")),
        "Same top-1 as Keras": percent(row.get("agreement_with_keras")),
        **({"Note": row["note"]} if row.get("note") else {}),
    } for row in rows]).fillna("–")


def downloads_ui() -> None:
    from trashure.export import zip_folder

    if "export_report" not in st.session_state:
        return
    out_dir, rows = st.session_state["export_report"]
    st.subheader("Formats")
    st.dataframe(report_table(rows), hide_index=True)
    cols = st.columns(len(rows))
    for col, row in zip(cols, rows):
        folder = Path(out_dir) / row["format"]
        if folder.is_dir():
            col.download_button(f"⬇️ {row['format']}.zip", zip_folder(folder), file_name=f"{row['format']}.zip",
                                mime="application/zip", key=f"dl-{row['format']}")
    st.caption(f"Files are also in `{out_dir}/<format>/`. Each zip holds the model, labels.txt and metadata.json.")


st.title("📦 Export")
st.caption("For web and mobile apps: Keras, SavedModel, TFLite float32 and int8, TF.js graph model. "
           "Each format is checked in its own runtime by the test suite, and scored here on the test photos.")
if access.read_only():
    st.info("🔒 Read-only presenter mode: exporting is switched off on this dashboard (TRASHURE_READ_ONLY).")
    st.stop()
entry = source_ui()
choice = options_ui() if entry is not None else None
if choice is not None:
    formats, scale = choice
    if not formats:
        st.warning("Choose at least one format.")
    else:
        folder = entry.name.replace(" · ", "-").replace(" ", "_") + ("" if scale == 255 else "-unit-input")
        export_ui(entry, default_exports_dir() / folder, formats, scale)
downloads_ui()
