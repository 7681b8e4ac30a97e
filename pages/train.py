"""Train: launch a run in its own process, follow it live, cancel it."""

from pathlib import Path

import streamlit as st

from pages.common import use_app_navigation
from trashure import charts, settings
from trashure.config import TrainConfig
from trashure.errors import TrashureError
from trashure.launcher import cancel_run, current_run, start_run
from trashure.runs import elapsed_seconds, get_run, list_runs

use_app_navigation()


def options_ui() -> TrainConfig | None:
    """The training form; returns a config when Start is pressed."""
    defaults = TrainConfig()
    with st.form("train_options"):
        cols = st.columns(3)
        mode = cols[0].radio("Mode", ["fast", "exact"], horizontal=True,
                             help="fast: cache the frozen base's features once (minutes). "
                                  "exact: the reference notebook verbatim (much slower).")
        epochs = cols[0].number_input("Max epochs", 1, 200, defaults.epochs)
        patience = cols[0].number_input("Early-stopping patience", 0, 50, defaults.patience)
        learning_rate = cols[1].number_input("Learning rate", 1e-6, 1e-1, defaults.learning_rate, format="%.5f")
        batch_size = cols[1].number_input("Batch size", 1, 512, defaults.batch_size)
        seed = cols[1].number_input("Seed (split and training)", 0, 2**31 - 1, defaults.seed)
        flip = cols[2].checkbox("Horizontal flip", defaults.augment_flip)
        rotation = cols[2].slider("Rotation (± degrees)", 0, 45, int(defaults.augment_rotation_degrees))
        brightness = cols[2].slider("Brightness (± fraction)", 0.0, 0.5, defaults.augment_brightness, 0.05)
        views = cols[2].number_input("Augmented views per photo (fast mode)", 0, 16, defaults.augmented_views)
        if not st.form_submit_button("▶ Start training", type="primary"):
            return None
    try:
        return TrainConfig(mode=mode, epochs=int(epochs), patience=int(patience), learning_rate=float(learning_rate),
                           batch_size=int(batch_size), seed=int(seed), augment_flip=flip,
                           augment_rotation_degrees=float(rotation), augment_brightness=float(brightness),
                           augmented_views=int(views))
    except ValueError as exc:
        st.error(str(exc))
        return None


def start_ui(config: TrainConfig, data_dir: Path) -> None:
    try:
        run = start_run(config, data_dir)
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


def remaining_seconds(status: dict, history: list[dict]) -> float | None:
    epochs = status.get("epochs") or 0
    if not history or not epochs:
        return None
    per_epoch = sum(h["seconds"] for h in history) / len(history)
    return per_epoch * max(epochs - len(history), 0)


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
    st.markdown(f"#### Run `{run.id}` · {state}")
    phase = status.get("phase", "")
    fraction = epoch / epochs if phase in ("training", "evaluating", "saving", "done") else 0.0
    st.progress(min(fraction, 1.0), text=f"epoch {epoch}/{epochs} · {status.get('message', phase)}")
    cols = st.columns(4)
    cols[0].metric("Epoch", f"{epoch}/{epochs}")
    cols[1].metric("Elapsed", format_seconds(elapsed_seconds(status)))
    cols[2].metric("Remaining (max)", format_seconds(remaining_seconds(status, history))
                   if state == "running" else "–")
    last = history[-1] if history else {}
    cols[3].metric("Val accuracy", f"{last['val_accuracy']:.1%}" if last else "–")
    if history:
        left, right = st.columns(2)
        left.plotly_chart(charts.history_curves(history, "accuracy"), key=f"acc-{run_id}-{len(history)}")
        right.plotly_chart(charts.history_curves(history, "loss"), key=f"loss-{run_id}-{len(history)}")
    if state in ("queued", "running"):
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
data_dir = settings.active_data_dir()
if not data_dir or not Path(data_dir).is_dir():
    st.info("Choose a data folder on the Dataset page first (or set `TRASHURE_DATA`).")
    st.stop()
st.caption(f"Data: `{data_dir}`")

going = current_run()
config = options_ui()
if config is not None:
    start_ui(config, Path(data_dir))
    going = current_run()
followed = going.id if going else st.session_state.get("followed_run")
if followed is None:
    runs = list_runs()
    followed = runs[0].id if runs else None
if followed:
    live_run_ui(followed)
else:
    st.caption("No runs yet.")
