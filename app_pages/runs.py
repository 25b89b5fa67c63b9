"""Runs: every stored run; open, rename, delete, download, and upload a checkpoint to inspect."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages._shared import (
    job_manager,
    requester,
    run_action,
    selected_run_ids,
    set_selected_run_ids,
    show_refusal,
    url_from_outside,
)
from fgff_core.analysis.compare import without_s_only_where_trained
from fgff_core.config.labels import algorithms_key
from fgff_core.format import MISSING, PERCENT_DIGITS
from fgff_core.jobs import Requester
from fgff_core.jobs.progress import run_progress
from fgff_core.jobs.ray_cluster import cluster_info
from fgff_core.public import run_failure
from fgff_core.store import import_checkpoint
from fgff_core.store.uploads import MAX_RUN_NAME, run_name_from_file, upload_problem, without_paths
from fgff_core.viz import curves
from fgff_core.vocabulary import ALGORITHMS, RunStatus

# The run id beside the name, so that two runs of the same name can be told apart.
# Fits the page at 1440 px without horizontal scrolling (tests/browser/test_runs_table.py): the device is in a run's
# details, and a long name is cut (in full in its details).
TABLE_COLUMNS = ["name", "run_id", "algo", "dataset", "status", "test_acc", "test_acc_no_significance", "epochs_done",
                 "epoch_events", "train_seconds", "created_at", "node"]

PERCENT_FORMAT = f"%.{PERCENT_DIGITS}f %%"  # "94.12 %", as format.percent writes an accuracy (sortable: a number)

jm = job_manager()
st.title("Runs")
st.caption("Every run stored on this server. Select rows to open them here; the selection is in the URL, "
           "so the Compare, Significance and Features pages and a shared link show the same runs.")
if (cluster := cluster_info()) is not None:  # jobs run on Ray (FGFF_EXECUTOR=ray)
    with st.expander(cluster.summary(), icon=":material/hub:"):
        st.dataframe(cluster.node_rows(alive=True), hide_index=True)
    if gone := cluster.node_rows(alive=False):  # Ray keeps listing nodes that left: folded, not piling up above
        with st.expander(f"{len(gone)} node{'s' if len(gone) != 1 else ''} that left the cluster",
                         icon=":material/cloud_off:"):
            st.dataframe(gone, hide_index=True)

# -- upload ------------------------------------------------------------------------------------
with st.expander("Upload a checkpoint to inspect", icon=":material/upload:"):
    upload = st.file_uploader("Checkpoint (.safetensors, saved by this app or `python -m fgff_core train --save`)",
                              type=["safetensors"], key="upload")
    if upload is not None and st.button("Import checkpoint"):
        data = upload.getvalue()
        problem = upload_problem(upload.name, data)
        if problem is not None:
            st.error(f"Not imported: {problem}")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "upload.safetensors"
                path.write_bytes(data)
                try:
                    new_id = import_checkpoint(jm.store, path, name=run_name_from_file(upload.name))
                except ValueError as exc:  # CheckpointError is a ValueError: not ours, damaged, mismatched
                    st.error(f"Could not import {upload.name}: "
                             f"{without_paths(str(exc), tmp).replace(path.name, upload.name)}")
                else:
                    st.success(f"Imported as run {new_id}. An imported checkpoint has no training metrics: its "
                               "model and factors can be inspected on Significance, Features and Data.")
                    set_selected_run_ids([new_id])

if "deleted" in st.session_state:
    st.success(f"Deleted run {st.session_state.pop('deleted')}.")
if "rename_error" in st.session_state:
    st.error(f"Could not rename: {st.session_state.pop('rename_error')}")
show_refusal()
who = requester()

runs = jm.store.runs()
if runs.empty:
    st.info("No runs yet. Start one on the **Train** page (the Train page shows how long a run is expected to take).")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/play_arrow:")
    st.stop()

# -- table with selection ----------------------------------------------------------------------
selected = [r for r in selected_run_ids() if r in set(runs["run_id"])]
# FF keeps s at 1: its accuracy without s would repeat its accuracy, so the table leaves it blank.
table = without_s_only_where_trained(runs)[[c for c in TABLE_COLUMNS if c in runs]].copy()
table.insert(table.columns.get_loc("status") + 1, "yours", runs["owner"] == who.owner)
for col in ("test_acc", "test_acc_no_significance"):
    if col in table:
        table[col] = 100.0 * table[col].astype(float)
table["created_at"] = pd.to_datetime(table["created_at"], utc=True, errors="coerce")
# Done and total in one column: with two, the table needed horizontal scrolling at 1440 px (its node column hidden).
done = table.pop("epochs_done").fillna(0).astype(int)
table.insert(table.columns.get_loc("epoch_events"), "epochs", [
    f"{d}/{int(t)}" if pd.notna(t) else str(d) for d, t in zip(done, table.pop("epoch_events"), strict=True)])
rows = [int(i) for i in table.index[table["run_id"].isin(selected)]]
# Keyed on the ids shown, so a deleted or added run never shifts the selection onto another row.
table_key = f"runs_table_{hash(tuple(table['run_id']))}"
if url_from_outside():  # Back or Forward: the URL's selection, not the one the table last held
    st.session_state.pop(table_key, None)
event = st.dataframe(
    table, key=table_key, hide_index=True, on_select="rerun",
    selection_mode="multi-row",
    selection_default={"selection": {"rows": rows, "columns": []}} if rows else None,
    column_config={
        "test_acc": st.column_config.NumberColumn("test acc", format=PERCENT_FORMAT),
        "test_acc_no_significance": st.column_config.NumberColumn(
            "without s", format=PERCENT_FORMAT,
            help="Test accuracy of the prediction rule without the significance factors s (eq. 2); blank for "
                 "runs that do not train s (FF keeps them at 1, so it would repeat the test accuracy)."),
        "algo": st.column_config.TextColumn("algo", help=algorithms_key(ALGORITHMS)),
        "yours": st.column_config.CheckboxColumn("yours", help="Started in this browser session: only it (or the "
                                                 "teacher) may cancel, delete or rename the run."),
        "epochs": st.column_config.TextColumn("epochs", help="Epochs done of the run's total (one per layer per "
                                              "epoch for layer-by-layer training)."),
        "train_seconds": st.column_config.NumberColumn("train (s)", format="%.1f", help="Training time, in seconds."),
        "name": st.column_config.TextColumn("name", width=150),
        "created_at": st.column_config.DatetimeColumn("created", format="D MMM HH:mm", help="When the run was "
                                                      "queued (UTC)."),
        "node": st.column_config.TextColumn("node", width=110, help="Where the run trained: the machine, and on a "
                                            "Ray cluster the node's id (in full in the run's details)."),
    })
picked = [str(table.iloc[i]["run_id"]) for i in event.selection.rows] if event is not None else selected
if picked != selected:
    set_selected_run_ids(picked)
    selected = picked

if not selected:
    st.info("Select one or more rows to open runs.")
    st.stop()


# -- details of each selected run --------------------------------------------------------------
def _delete(run_id: str, by: Requester) -> None:
    jm.delete(run_id, by=by)  # RunPermissionError: said by run_action's sentence
    set_selected_run_ids([r for r in selected_run_ids() if r != run_id])
    st.session_state["deleted"] = run_id


def _rename(run_id: str, by: Requester) -> None:
    new_name = st.session_state.get(f"name_{run_id}", "").strip()
    try:
        jm.rename(run_id, new_name, by=by)
    except (ValueError, PermissionError) as exc:
        st.session_state["rename_error"] = str(exc)


for run_id in selected:
    run = jm.store.run(run_id)
    progress = run_progress(run, None)
    allowed = jm.access.may_manage(run.get("owner"), who)  # this session's run, or the teacher's key
    with st.container(border=True):
        st.subheader(f"{run.get('name') or run_id} · {run_id}")
        st.caption(f"run {run_id} · {progress.text()} · created {run.get('created_at')} · "
                   f"device {run.get('device') or MISSING} · node {run.get('node') or MISSING}")
        if run.get("status") == RunStatus.FAILED:
            st.error(f"Failed: {run_failure(run.get('error'))}")
        imported = run.get("origin") == "imported"
        if not imported:  # above the columns: in the narrow one, at 1024 px, its headers ran past the card
            st.markdown("**Final accuracy**")
            st.table(curves.final_accuracy_table(run), width="content")
        c1, c2 = st.columns([2, 3])
        metrics = jm.store.metrics(run_id)
        with c1:
            st.markdown("**Config**")
            st.json(run.get("config") or {}, expanded=False)
        with c2:
            if imported:
                st.info("Imported from a checkpoint file, without metrics: it was not trained here, so it has no "
                        "curves and no stored accuracies. Its model and factors can be inspected on Significance, "
                        "Features and Data (the prediction rule).", icon=":material/upload:")
            else:
                st.plotly_chart(curves.accuracy_figure(metrics, str(run.get("algo"))), key=f"acc_{run_id}")
                per_layer = curves.layer_accuracy_figure(metrics, str(run.get("algo")),
                                                         str((run.get("config") or {}).get("schedule", "greedy")))
                if per_layer is not None:
                    st.plotly_chart(per_layer, key=f"layer_acc_{run_id}")
        a, b, d = st.columns(3)
        a.page_link("app_pages/train.py", label="Open in Train", icon=":material/monitoring:",
                    query_params={"run": run_id})
        a.page_link("app_pages/data.py", label="Prediction rule (Data)", icon=":material/image:",
                    query_params={"run": run_id})
        b.text_input("Name", value=run.get("name") or "", key=f"name_{run_id}", on_change=run_action,
                     args=(_rename, run_id), disabled=not allowed, max_chars=MAX_RUN_NAME,
                     help=f"Press Enter to rename (at most {MAX_RUN_NAME} "
                     "characters; the counter shows how many are left).")
        with st.container(horizontal=True, vertical_alignment="center"):  # a fourth column cut "Config JSON"
            st.download_button("Metrics CSV", metrics.to_csv(index=False), file_name=f"{run_id}_metrics.csv",
                               mime="text/csv", key=f"csv_{run_id}", on_click="ignore",
                               icon=":material/download:")
            st.download_button("Config JSON", jm.store.config(run_id).to_json(), file_name=f"{run_id}_config.json",
                               mime="application/json", key=f"json_{run_id}", on_click="ignore",
                               icon=":material/download:")
            ckpt = jm.store.checkpoint_path(run_id)
            if ckpt is not None and Path(ckpt).is_file():
                st.download_button("Checkpoint", Path(ckpt).read_bytes(), file_name=f"{run_id}.safetensors",
                                   mime="application/octet-stream", key=f"ckpt_{run_id}", on_click="ignore",
                                   icon=":material/download:")
            else:
                st.caption("No checkpoint (written when a run finishes).")
        with d:
            if not allowed:
                st.caption(f"{jm.access.why_not(run, 'cancel, delete or rename')}.")
            elif progress.active:
                st.button("Cancel run", key=f"cancel_{run_id}", on_click=run_action, args=(jm.cancel, run_id))
            else:
                confirm = st.checkbox("Yes, delete this run", key=f"confirm_{run_id}")
                st.button("Delete", key=f"delete_{run_id}", type="primary", disabled=not confirm,
                          on_click=run_action, args=(_delete, run_id), icon=":material/delete:")
