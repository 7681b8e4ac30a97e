"""Trashure studio: `streamlit run app.py`."""

import streamlit as st

from pages.common import sidebar_ui

st.set_page_config(page_title="Trashure", page_icon="♻️", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon="🗂️"),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/results.py", title="Results", icon="📊"),
    st.Page("pages/classify.py", title="Classify", icon="📷"),
]

page = st.navigation(PAGES)
sidebar_ui()
page.run()
