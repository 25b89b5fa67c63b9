"""Plotly figure builders for the app (no Streamlit here): pages call these and draw the result."""
