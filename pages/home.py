"""Home: what Trashure does and the active model at a glance."""

import streamlit as st

from trashure.catalog import model_card
from trashure.config import CLASSES, DEFAULT_MODEL_PATH


def header_ui() -> None:
    st.title("♻️ Trashure")
    st.write("Snap a photo of a piece of waste and Trashure tells you what it is: "
             + ", ".join(f"**{c.replace('_', ' ')}**" for c in CLASSES) + ".")


def model_ui(card: dict) -> None:
    st.subheader("Active model")
    if not card:
        st.warning(f"No model card found beside {DEFAULT_MODEL_PATH.name}. "
                   "Train a model with `python -m trashure train --data DATA_DIR`.")
        return
    metrics = card.get("metrics", {})
    cols = st.columns(3)
    cols[0].metric("Test accuracy", f"{metrics.get('test_accuracy', float('nan')):.1%}")
    cols[1].metric("Test photos", metrics.get("test_images", "–"))
    cols[2].metric("Trained", str(card.get("trained_at", "–"))[:10])
    st.caption(card.get("architecture", ""))


header_ui()
model_ui(model_card(DEFAULT_MODEL_PATH))
