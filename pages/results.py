"""Results: curves, test metrics, confusion matrix, per-class scores, mistakes, run comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import streamlit as st

from pages.common import file_signature, heat_map, thumbnail, use_app_navigation
from trashure import access, charts, settings
from trashure.catalog import ModelEntry, comparison_rows, display_name, model_entries
from trashure.config import DEFAULT_MODEL_PATH
from trashure.errors import TrashureError

use_app_navigation()

def pick_ui(entries: list[ModelEntry]) -> ModelEntry:
    by_name = {e.name: e for e in entries}
    wanted = st.session_state.pop("results_run", None)  # set by the Train page when a run finishes
    if wanted in by_name:
        st.session_state["results_model"] = wanted
    if st.session_state.get("results_model") not in by_name:
        st.session_state.pop("results_model", None)
    name = st.selectbox("Model", list(by_name), key="results_model",
                        format_func=lambda n: n if by_name[n].state() == "done" else f"{n} · {by_name[n].state()}")
    return by_name[name]


def metrics_ui(accuracy: float | None, loss: float | None, n_images: int | None,
               best_val: float | None = None) -> None:
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{accuracy:.2%}" if accuracy is not None else "–")
    cols[1].metric("Test loss", f"{loss:.4f}" if loss is not None else "–")
    cols[2].metric("Test photos", n_images if n_images is not None else "–")
    cols[3].metric("Val accuracy (kept weights)", f"{best_val:.2%}" if best_val is not None else "–")


def curves_ui(history: list[dict[str, float]]) -> None:
    if not history:
        st.caption("No training history recorded.")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.history_curves(history, "accuracy"))
    right.plotly_chart(charts.history_curves(history, "loss"))


def confusion_ui(matrix: Sequence[Sequence[int]], classes: Sequence[str],
                 per_class: dict[str, dict[str, float]]) -> None:
    normalise = st.toggle("Row-normalised", value=False)
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.confusion_matrix(matrix, classes, normalise))
    table = pd.DataFrame(per_class).T[["precision", "recall", "f1", "support"]]
    right.markdown("**Per class**")
    table["support"] = table["support"].astype(int)
    percent = st.column_config.NumberColumn(format="percent")
    right.dataframe(table, column_config={"precision": percent, "recall": percent, "f1": st.column_config.NumberColumn(
        "F1", format="percent"), "support": st.column_config.NumberColumn("test photos")})


def per_source_ui(per_source: dict) -> None:
    """Accuracy on each source folder's test part, with its 95% interval: a model that only knows one
    source shows it here."""
    if not per_source:
        return
    st.subheader("Per source folder")
    rows = [{"source": name, "test photos": m["n_images"], "accuracy": m["accuracy"],
             "95% interval": (f"{m['accuracy_ci95'][0]:.1%} – {m['accuracy_ci95'][1]:.1%}"
                              if m.get("accuracy_ci95") else "–"),
             "loss": m["loss"]} for name, m in per_source.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={"accuracy": st.column_config.NumberColumn(format="percent"),
                                "loss": st.column_config.NumberColumn(format="%.4f")})


def source_dirs(dirs: list[Path]) -> dict[str, Path]:
    """Source name -> folder; '' -> the first folder, for predictions recorded before sources existed."""
    out = {d.name: d for d in dirs}
    if dirs:
        out[""] = dirs[0]
    return out


def mistakes_ui(rows: list[dict[str, str]], dirs: dict[str, Path], model_path: Path) -> None:
    wrong = [r for r in rows if r.get("correct") == "0"]
    st.subheader(f"Misclassified test photos ({len(wrong)})")
    if not wrong:
        st.caption("None." if rows else "No per-photo predictions recorded for this run.")
        return
    if not any(d.is_dir() for d in dirs.values()):
        st.dataframe(pd.DataFrame(wrong)[["file", "true", "predicted", "confidence"]], hide_index=True)
        return
    why = model_path.is_file() and st.toggle(
        "Why? Heat maps of where the model looked", key=f"why-{model_path}",
        help="Grad-CAM over each photo: the parts that raised the wrong class. Loads TensorFlow.")
    cols = st.columns(6)
    for i, r in enumerate(sorted(wrong, key=lambda r: -float(r["confidence"]))):
        folder = dirs.get(r.get("source", ""), dirs.get(""))
        path = str(folder / r["file"])
        try:
            image = heat_map(str(model_path), file_signature(model_path), path) if why else thumbnail(path)[0]
        except TrashureError:
            cols[i % 6].caption(f"{r['file']} (not readable now)")
            continue
        cols[i % 6].image(image, caption=f"true {r['true']} → {r['predicted']} ({float(r['confidence']):.0%})")


def use_model_ui(entry: ModelEntry) -> None:
    active = settings.active_model_path().resolve() == entry.path.resolve()
    if active:
        st.success(f"This model ({entry.name}) is the active model.")
    if access.read_only():
        return
    if active:
        previous = settings.previous_model_path()
        if previous is not None and previous.resolve() != entry.path.resolve():
            name = display_name(previous)
            if st.button(f"↩ Back to the previous model ({name})"):
                settings.set_active_model(None if previous == DEFAULT_MODEL_PATH else previous)
                st.session_state["results_run"] = entry.name
                st.rerun()
    elif st.button(f"✅ Use this model ({entry.name})", type="primary"):
        from trashure.prediction import tflite_for

        # Made now, with a spinner, rather than as a freeze on the next Classify visit.
        with st.spinner("Preparing the model for live classification (its TFLite twin)…"):
            try:
                tflite_for(entry.path)
            except TrashureError as exc:
                st.error(f"This model cannot be used for live classification: {exc}")
                return
        settings.set_active_model(None if entry.shipped else entry.path)
        st.session_state["results_run"] = entry.name  # stay on this model after the rerun
        st.rerun()


def status_ui(entry: ModelEntry) -> None:
    status = entry.run.status() if entry.run is not None else {}
    if status.get("state") == "failed":
        st.error(f"This run failed: {status.get('error')}")
    elif status.get("state") == "unreadable":
        st.error(f"This run cannot be shown: {status.get('error')}.")
    elif status.get("state") in ("queued", "running"):
        st.info(f"This run is {status.get('state')} (epoch {status.get('epoch')}/{status.get('epochs')}).")
    elif status.get("state") == "cancelled":
        st.warning("This run was cancelled.")


def model_ui(entry: ModelEntry) -> None:
    """The same views for the shipped model and for any run."""
    status_ui(entry)
    metrics = entry.metrics()
    if metrics:
        metrics_ui(metrics["accuracy"], metrics["loss"], metrics["n_images"],
                   metrics.get("kept_val_accuracy", metrics.get("best_val_accuracy")))
        if entry.path.is_file() and entry.state() == "done":
            use_model_ui(entry)
    curves_ui(entry.history())
    if metrics:
        confusion_ui(metrics["confusion_matrix"], metrics["classes"], metrics["per_class"])
        per_source_ui(metrics.get("per_source", {}))
        mistakes_ui(entry.predictions(), source_dirs(entry.data_dirs(settings.active_data_dirs())), entry.path)
    card = entry.card()
    if card:
        with st.expander("Model card"):
            st.json(card)


def comparison_ui(entries: list[ModelEntry]) -> None:
    st.subheader("All models")
    if len(entries) <= 1:
        st.caption("No training runs yet: start one on the Train page.")
    if entries:
        percent = st.column_config.NumberColumn(format="percent")
        st.dataframe(pd.DataFrame(comparison_rows(entries)), hide_index=True,
                     column_config={"test accuracy": percent,
                                    "test loss": st.column_config.NumberColumn(format="%.4f")})


st.title("📊 Results")
entries = model_entries()
if not entries:
    st.info("No model yet: train one on the Train page.")
    st.stop()
model_ui(pick_ui(entries))
comparison_ui(entries)
