"""Trashure studio: `streamlit run app.py`."""

import streamlit as st

from pages.common import app_pages, set_page_config, sidebar_ui

set_page_config()
page = st.navigation(app_pages())
sidebar_ui()
page.run()
