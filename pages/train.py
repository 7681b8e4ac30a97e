"""Train: launch a run in its own process, follow it live, cancel it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from pages.common import use_app_navigation
from trashure import access, charts, settings
from trashure.config import CLASS_WEIGHTINGS, TrainConfig
from trashure.errors import TrashureError
from trashure.launcher import cancel_run, current_run, start_run
from trashure.runs import best_val_accuracy, elapsed_seconds, get_run, list_runs, remaining_seconds

if TYPE_CHECKING:  # the type of st.columns()' columns
    from streamlit.delta_generator import DeltaGenerator

use_app_navigation()


def mode_ui() -> str:
    """fast or exact. Outside the form, so that the form below shows the chosen mode's own defaults."""
    return st.radio("Mode", ["fast", "exact"], horizontal=True,
                    help="fast: Trashure's recipe; the frozen base runs once per cached view (minutes). "
                         "exact: the reference notebook verbatim, every epoch through the whole model (much "
                         "slower); the form then starts from the notebook's settings, and any option you switch "
                         "on is trained the exact way.")


def recipe_ui(col: DeltaGenerator, defaults: TrainConfig) -> dict:
    """Epochs, patience and learning rate: the frozen stage's settings."""
    epochs = col.number_input("Max epochs", 1, 200, defaults.epochs)
    patience = col.number_input("Early-stopping patience", 0, 50, defaults.patience)
    # step: the default 0.01 would push a rate out of range, which disables the -/+ buttons.
    learning_rate = col.number_input("Learning rate", 1e-6, 1e-1, defaults.learning_rate, 1e-5, format="%.5f")
    return {"epochs": int(epochs), "patience": int(patience), "learning_rate": float(learning_rate)}


def split_ui(col: DeltaGenerator, defaults: TrainConfig) -> dict:
    """Batch size, seed, class weights, devices and the split."""
    batch_size = col.number_input("Batch size", 1, 512, defaults.batch_size)
    seed = col.number_input("Seed (split and training)", 0, 2**31 - 1, defaults.seed)
    weighting = col.selectbox(
        "Class weights", CLASS_WEIGHTINGS, CLASS_WEIGHTINGS.index(defaults.class_weighting),
        help="balanced: every class weighs the same in the loss (the merged data is far from balanced). "
             "balanced_by_source: the same, and within a class each data folder's share goes with the square root "
             "of its photos of it, so that one large folder does not teach the whole class. none: every photo "
             "weighs one.")
    strategy = col.selectbox(
        "Devices (tf.distribute)", ["default", "mirrored"],
        help="default: one device. mirrored: every GPU of this machine, a global batch split across them. "
             "Several machines (multiworker) start from the command line, one process each with its "
             "TF_CONFIG: see the README.")
    leakage_safe = col.checkbox("Leakage-safe split", defaults.leakage_safe_split,
                                help="Near-duplicate photos (same bytes, or the same picture re-encoded, resized or "
                                     "shot again) stay in one part of the split, so the test never holds a copy of "
                                     "a training photo.")
    return {"batch_size": int(batch_size), "seed": int(seed), "strategy": strategy,
            "class_weighting": weighting, "leakage_safe_split": leakage_safe}


def augmentation_ui(col: DeltaGenerator, defaults: TrainConfig) -> dict:
    """The notebook's augmentation, cut-and-paste, camera noise and the number of views."""
    flip = col.checkbox("Horizontal flip", defaults.augment_flip)
    rotation = col.slider("Rotation (± degrees)", 0, 45, int(defaults.augment_rotation_degrees))
    brightness = col.slider("Brightness (± fraction)", 0.0, 0.5, defaults.augment_brightness, 0.05)
    paste = col.slider("Paste plain-board photos onto new backgrounds", 0.0, 1.0, defaults.paste_probability, 0.1,
                       help="Share of augmented views whose object is cut out of a plain board and pasted onto a "
                            "generated floor, table or texture.")
    surfaces = col.slider("…onto photographed surfaces (share of pastes)", 0.0, 1.0, defaults.texture_probability, 0.1,
                          help="Share of those pastes that go onto a photo of a real floor, paving, wall or lawn "
                               "(23 surfaces from Sweet Home 3D) rather than a generated background.")
    noise = col.checkbox("Camera noise", defaults.photo_noise,
                         help="Random crop, colour jitter, blur, sensor noise and JPEG quality of phone photos.")
    grey = col.slider("Grey views (share)", 0.0, 1.0, defaults.grayscale_probability, 0.05,
                      help="Share of the camera-noise views turned grey, so the model reads shape and shading "
                           "rather than colour or the scene's tint.")
    views = col.number_input("Augmented views per photo (fast mode)", 0, 16, defaults.augmented_views)
    return {"augment_flip": flip, "augment_rotation_degrees": float(rotation), "augment_brightness": float(brightness),
            "paste_probability": float(paste), "texture_probability": float(surfaces), "photo_noise": noise,
            "grayscale_probability": float(grey),
            "augmented_views": int(views)}


def fine_tune_ui(col: DeltaGenerator, defaults: TrainConfig) -> dict:
    """The fine-tuning stage and how the saved model looks."""
    blocks = col.number_input("Fine-tune: top blocks to unfreeze (0: off)", 0, 16, defaults.fine_tune_blocks)
    epochs = col.number_input("Fine-tune: max epochs", 0, 100, defaults.fine_tune_epochs)
    learning_rate = col.number_input("Fine-tune: learning rate", 1e-7, 1e-2, defaults.fine_tune_learning_rate, 1e-5,
                                     format="%.6f")
    patience = col.number_input("Fine-tune: patience", 0, 50, defaults.fine_tune_patience)
    average = col.checkbox("Fine-tune: average epochs", defaults.fine_tune_average_weights,
                           help="Stochastic weight averaging: the mean of the weights at the end of every "
                                "fine-tuning epoch, rather than the one epoch of lowest validation loss. "
                                "It generalised better to photos of other sources.")
    keep = col.checkbox("Fine-tune: keep unless worse", defaults.fine_tune_keep == "unless_worse",
                        help="Keep the fine-tuned model unless its validation photos' losses are higher than the "
                             "frozen stage's beyond chance (paired test, p < 0.05); unticked, only if its "
                             "validation loss is lower, which a 1% wobble can decide.")
    glimpse = col.number_input("Look twice: close-up width (0: off)", 0.0, 1.0, defaults.glimpse_side, 0.05,
                               help="The saved model classifies the whole photo, then a close-up this part of the "
                                    "photo wide around where its head sees the object, and averages the two: small "
                                    "objects on a floor are read far better.")
    mirror = col.checkbox("Look twice: mirrored too", defaults.glimpse_mirror,
                          help="Both looks again on the left-right mirror image, all four averaged: better across "
                               "sources, twice the arithmetic at prediction.")
    return {"fine_tune_blocks": int(blocks), "fine_tune_epochs": int(epochs),
            "fine_tune_learning_rate": float(learning_rate), "fine_tune_patience": int(patience),
            "fine_tune_average_weights": average, "fine_tune_keep": "unless_worse" if keep else "if_better",
            "glimpse_side": float(glimpse), "glimpse_mirror": mirror}


def options_ui(mode: str) -> TrainConfig | None:
    """The training form, starting from the mode's recipe; returns a config when Start is pressed."""
    defaults = TrainConfig.for_mode(mode)
    with st.form(f"train_options_{mode}"):
        cols = st.columns(4)
        fields = {**recipe_ui(cols[0], defaults), **split_ui(cols[1], defaults),
                  **augmentation_ui(cols[2], defaults), **fine_tune_ui(cols[3], defaults)}
        if not st.form_submit_button("▶ Start training", type="primary"):
            return None
    try:
        return TrainConfig.for_mode(mode, **fields)
    except ValueError as exc:
        st.error(str(exc))
        return None


def start_ui(config: TrainConfig, data_dirs: list[Path]) -> None:
    try:
        run = start_run(config, data_dirs)
    except TrashureError as exc:
        st.warning(str(exc))
        return
    st.session_state["followed_run"] = run.id
    st.toast(f"Started run {run.id}")


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def progress_ui(status: dict, history: list[dict]) -> None:
    """One bar: the current phase's progress while photos are read or features computed, else epochs;
    full when the run is done, even when early stopping ended it before the last epoch."""
    state, phase = status.get("state"), status.get("phase", "")
    epochs, epoch = status.get("epochs") or 1, int(status.get("epoch") or 0)
    message = status.get("message", phase)
    if state == "done":
        st.progress(1.0, text=f"done after {len(history)} epochs · {message}")
    elif phase in ("features", "data") and state == "running":
        fraction = min(float(status.get("phase_progress") or 0.0), 1.0)
        left = remaining_seconds(status, history)
        st.progress(fraction, text=f"{message} · {fraction:.0%}" +
                    (f" · about {format_seconds(left)} left" if left is not None else ""))
    else:
        stage = f" ({status['stage']})" if status.get("stage") else ""
        st.progress(min(epoch / epochs, 1.0), text=f"epoch {epoch}/{epochs}{stage} · {message}")


@st.fragment(run_every=2)
def live_run_ui(run_id: str) -> None:
    try:
        run = get_run(run_id)
    except TrashureError as exc:
        st.warning(str(exc))
        return
    status, history = run.status(), run.history()
    state, epochs = status.get("state", "unknown"), status.get("epochs") or 1
    epoch = int(status.get("epoch") or 0)
    config = run.config()
    st.markdown(f"#### Run `{run.id}` · {state}")
    st.caption(f"{config.get('mode', '?')} mode · strategy {config.get('strategy', 'default')} · "
               f"batch {config.get('batch_size', '?')} (global) · seed {config.get('seed', '?')} · "
               + ("leakage-safe split" if config.get("leakage_safe_split") else "plain split"))
    progress_ui(status, history)
    cols = st.columns(4)
    cols[0].metric("Epoch", f"{epoch}/{epochs}" if state != "done" else f"{len(history)} run")
    cols[1].metric("Elapsed", format_seconds(elapsed_seconds(status)))
    cols[2].metric("Remaining (at most)", format_seconds(remaining_seconds(status, history)))
    cols[3].metric("Val accuracy (best so far)", f"{best_val_accuracy(history):.1%}" if history else "–",
                   help="Validation accuracy at the lowest validation loss so far. When fine-tuning ends, the run "
                        "keeps the mean of its fine-tuning epochs' weights: the Results page shows its accuracy.")
    if history:
        left, right = st.columns(2)
        left.plotly_chart(charts.history_curves(history, "accuracy"), key=f"acc-{run_id}-{len(history)}")
        right.plotly_chart(charts.history_curves(history, "loss"), key=f"loss-{run_id}-{len(history)}")
    if state in ("queued", "running") and not access.read_only():
        if st.button("■ Cancel run", key=f"cancel-{run_id}"):
            cancel_run(run)
            st.info("Cancel requested; the run stops after the current batch.")
    elif state == "done":
        metrics = run.metrics() or {}
        st.success(f"Done: test accuracy {metrics.get('accuracy', float('nan')):.2%}. "
                   "See it on the Results page.")
        st.page_link("pages/results.py", label="Open Results", icon="📊")
        st.session_state["results_run"] = run.id
    elif state == "cancelled":
        st.warning(f"Cancelled. {status.get('message', '')}")
    elif state == "failed":
        st.error(f"Failed: {status.get('error', 'unknown error')}")
        with st.expander("Log"):
            try:
                st.code(run.log_path().read_text()[-5000:])
            except OSError:
                st.caption("no log")


st.title("🏋️ Train")
data_dirs = [d for d in settings.active_data_dirs() if Path(d).is_dir()]
if not data_dirs:
    st.info("Choose a data folder on the Dataset page first (or set `TRASHURE_DATA`).")
    st.stop()
st.caption("Data: " + " + ".join(f"`{d}`" for d in data_dirs))

going = current_run()
if access.read_only():
    st.info("🔒 Read-only presenter mode: training is switched off on this dashboard (TRASHURE_READ_ONLY).")
    config = None
else:
    config = options_ui(mode_ui())
if config is not None:
    start_ui(config, data_dirs)
    going = current_run()
followed = going.id if going else st.session_state.get("followed_run")
if followed is None:
    runs = list_runs()
    followed = runs[0].id if runs else None
if followed:
    live_run_ui(followed)
else:
    st.caption("No runs yet.")
