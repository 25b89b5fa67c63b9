"""FGFF Explorer: train, watch, compare and look inside Forward-Forward networks.

Run with ``streamlit run app.py``. Each page is a short script over ``fgff_core``.
"""

import streamlit as st

st.set_page_config(page_title="FGFF Explorer", page_icon="assets/icon.png", layout="wide")

PAGES = [
    st.Page("pages/train.py", title="Train", icon=":material/play_arrow:", default=True),
    st.Page("pages/compare.py", title="Compare FF vs FGFF", icon=":material/compare_arrows:"),
    st.Page("pages/significance.py", title="Significance", icon=":material/grid_on:"),
    st.Page("pages/features.py", title="Features (t-SNE)", icon=":material/scatter_plot:"),
    st.Page("pages/data.py", title="Data", icon=":material/image:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/folder:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
]

st.navigation(PAGES).run()
