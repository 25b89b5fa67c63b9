"""FGFF Explorer: train, watch, compare and look inside Forward-Forward networks.

Run with ``streamlit run app.py``. Each page is a short script over ``fgff_core`` in ``app_pages/``.
The folder is not called ``pages/``: Streamlit treats a ``pages/`` folder beside the main script as a
legacy multipage app, and then serves a shared deep link (``/learn?step=4``) opened first on a fresh
server without this navigation.
"""

import streamlit as st

st.set_page_config(page_title="FGFF Explorer", page_icon="assets/icon.png", layout="wide")

PAGES = [
    st.Page("app_pages/train.py", title="Train", icon=":material/play_arrow:", default=True),
    st.Page("app_pages/compare.py", title="Compare FF vs FGFF", icon=":material/compare_arrows:"),
    st.Page("app_pages/significance.py", title="Significance", icon=":material/grid_on:"),
    st.Page("app_pages/features.py", title="Features (t-SNE)", icon=":material/scatter_plot:"),
    st.Page("app_pages/data.py", title="Data", icon=":material/image:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/folder:"),
    st.Page("app_pages/learn.py", title="Learn", icon=":material/school:"),
]

try:
    from app_pages._shared import note_url_arrival, session_owner, teacher_box

    session_owner()  # every page keeps this browser's ?me= in the URL (a page link drops it)
    teacher_box()
    page = st.navigation(PAGES)
    note_url_arrival(page.url_path)  # Back and Forward: the pages restart their widgets from the URL
    page.run()
except Exception:  # noqa: BLE001 - what no page caught is a sentence for the user (st.stop/st.rerun pass through)
    from app_pages._shared import page_failed

    page_failed()
