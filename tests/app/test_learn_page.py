"""Learn page (teach mode) in AppTest: each step's controls, the URL round trip, hidden controls."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from conftest import open_page

from fgff_core import lesson
from fgff_core.data import load_dataset
from fgff_core.store import import_checkpoint

SMALL = dict(layers="8,6", epochs="5")  # 10 layer-epochs: a whole run in a fraction of a second


def app(**params):
    return open_page("learn", **{**SMALL, **params})


def keys(at, kind: str) -> set[str]:
    return {w.key for w in at.get(kind)}


@pytest.mark.parametrize("step,charts", [(1, 1), (2, 1), (3, 2), (5, 5)])
def test_each_step_renders(runs_dir, step, charts):
    at = app(step=str(step))
    assert not at.exception, at.exception
    assert not at.error
    assert at.header[0].value.startswith(f"{step}. {lesson.STEP_TITLES[step]}")
    assert len(at.get("plotly_chart")) == charts


def test_url_round_trip_restores_every_knob_and_hides_controls(runs_dir):
    params = dict(step="2", algo="ff", lr="0.03", sig_lr="0.2", threshold="1.5", loss="hinge", delta="0.25",
                  layers="8,6", seed="3", epochs="7", sample="11", hide="lr,seed")
    at = open_page("learn", **params)
    assert not at.exception and not at.error
    shown = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items() if k != "me"}
    assert shown == params  # and this browser's owner token, "me" (tests/app/test_owners_page.py)
    assert at.number_input(key="w_threshold").value == 1.5
    assert at.number_input(key="w_sig_lr").value == 0.2
    assert at.text_input(key="w_layers").value == "8,6"
    assert at.number_input(key="w_epochs").value == 7
    assert at.number_input(key="w_sample").value == 11
    assert at.radio(key="w_loss").value == "hinge"
    assert "w_lr" not in keys(at, "number_input") and "w_seed" not in keys(at, "number_input")
    # a widget change goes to the URL
    at.number_input(key="w_threshold").set_value(2.5).run()
    assert at.query_params["threshold"] in ("2.5", ["2.5"])
    assert at.query_params["lr"] in ("0.03", ["0.03"])  # the hidden value is kept


def _q(at, name):
    v = at.query_params[name]
    return v[0] if isinstance(v, list) else v


@pytest.mark.parametrize("key,value,message", [("lr", "-1", "lr"), ("layers", "9999", "layers"),
                                               ("step", "7", "step"), ("loss", "mse", "loss")])
def test_bad_url_value_is_an_error_and_the_default_is_used(runs_dir, key, value, message):
    at = app(**{key: value})
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    default, _ = lesson.parse_lesson_params({k: v for k, v in SMALL.items() if k != key}, 450)
    default = default.to_params()
    assert _q(at, key) == default[key]


def test_step_navigation_buttons_and_hidden_navigation(runs_dir):
    at = app(step="1")
    at.button(key="nav_next").click().run()
    assert at.header[0].value.startswith("2.") and _q(at, "step") == "2"
    at.button(key="nav_prev").click().run()
    assert at.header[0].value.startswith("1.") and _q(at, "step") == "1"
    at = app(step="4", hide="step")
    assert not keys(at, "button") & {"nav_next", "nav_prev"}
    assert not at.get("segmented_control") or "w_step" not in keys(at, "segmented_control")


def test_step1_sample_and_wrong_label(runs_dir):
    at = app(step="1", sample="3")
    digits = load_dataset("digits")
    true = int(digits.y_test[3])
    assert at.metric[0].value == str(true)
    wrong = at.selectbox(key="w_wrong_3")
    assert true not in wrong.options and len(wrong.options) == 9
    wrong.set_value(next(o for o in wrong.options if o != wrong.value)).run()
    assert not at.exception
    at.number_input(key="w_sample").set_value(4).run()
    assert _q(at, "sample") == "4" and at.metric[0].value == str(int(digits.y_test[4]))


def test_step2_numbers_are_the_engines(runs_dir):
    at = app(step="2", sample="5")
    cfg = lesson.lesson_config(layers=(8, 6), epochs=5)
    digits = load_dataset("digits")
    model = lesson.SteppedTraining(cfg, digits).model  # same seed: the page's untrained net
    true = int(digits.y_test[5])
    wrong = lesson.default_wrong_label(true, cfg.seed)
    for layer in (0, 1):
        if layer:
            at.selectbox(key="w_layer2").set_value(1).run()
        view = lesson.layer_view(model, digits.x_test[5:6], true, wrong, layer, cfg.threshold, cfg.delta)
        shown = {m.label: m.value for m in at.metric}
        assert shown["g_pos (true label)"] == f"{view.g_pos:.3f}"
        assert shown["softplus loss"] == f"{view.softplus:.4f}"
        assert shown["hinge loss, eq. (1)"] == f"{view.hinge:.4f}"


def test_step3_buttons_train_step_by_step(runs_dir):
    at = app(step="3")
    assert "untrained" in at.get("progress")[0].proto.text
    at.button(key="step_one").click().run()
    assert "layer 1 after 1 of 5 epochs" in at.get("progress")[0].proto.text
    at.toggle(key="w_slow").set_value(True).run()
    at.button(key="step_play").click().run()  # play: this run's tick advances one epoch (slow motion)
    assert "(2/10 layer-epochs)" in at.get("progress")[0].proto.text
    at.button(key="step_play").click().run()  # pause
    at.button(key="step_ten").click().run()
    assert "fully trained" in at.get("progress")[0].proto.text
    assert any(m.label == "Test accuracy" for m in at.metric)
    at.button(key="step_reset").click().run()
    assert "untrained" in at.get("progress")[0].proto.text
    assert not at.exception


def test_changing_a_knob_restarts_training(runs_dir):
    at = app(step="3")
    at.button(key="step_ten").click().run()
    at.text_input(key="w_layers").set_value("7").run()
    assert "untrained" in at.get("progress")[0].proto.text and _q(at, "layers") == "7"
    assert len(at.get("plotly_chart")) == 2


def test_step4_trains_ff_and_fgff_through_the_job_manager(runs_dir, jm):
    at = app(step="4")
    assert not at.exception
    at.button(key="step4_train").click().run()
    runs = jm.store.runs()
    assert sorted(runs["algo"]) == ["ff", "fgff"]
    for run_id in runs["run_id"]:
        assert jm.wait(run_id, timeout=180) == "done", jm.store.run(run_id).get("error")
    at = app(step="4")  # a fresh visitor of the same link finds the stored pair
    assert not at.exception, at.exception
    assert "step4_train" not in keys(at, "button")
    assert len(at.get("plotly_chart")) == 3  # FF factors, FGFF factors, accuracy
    assert len(jm.store.runs()) == 2  # nothing resubmitted
    # Issue 34: one paragraph that links to "Does the factor matter?" on Significance, for this very pair
    ids = jm.store.runs().set_index("algo")["run_id"]
    assert any(m.value.startswith("**Does the factor matter?**") for m in at.markdown)
    link = next(e.proto for e in at.get("page_link") if e.proto.label.startswith("Does the factor matter?"))
    assert "significance" in link.page
    assert parse_qs(link.query_string) == {"run": [f"{ids['ff']},{ids['fgff']}"]}
    fgff = jm.store.runs().set_index("algo").loc["fgff"]
    acc = at.get("plotly_chart")[2].proto.spec
    assert f"{100 * fgff['test_acc']:.1f} %" in acc
    # Issue 15 case 3: an imported copy of the FGFF checkpoint (done, no accuracies) is not taken as the pair.
    imported = import_checkpoint(jm.store, jm.store.checkpoint_path(fgff["run_id"]), name="imported copy")
    at = app(step="4")
    texts = [c.value for c in at.caption] + [m.value for m in at.markdown]
    assert not any("nan" in t for t in texts), texts
    assert imported not in " ".join(texts) and fgff["run_id"] in " ".join(texts)
    assert "nan" not in at.get("plotly_chart")[2].proto.spec
    # Issue 15 case 14: step 5 of a fresh session (a reload) uses the stored run instead of an untrained net.
    at = app(step="5", hide="step")
    assert any(fgff["run_id"] in c.value and "stored run" in c.value for c in at.caption)
    assert "step5_train" not in keys(at, "button")


def test_step4_says_how_a_pair_run_ended_without_a_result_and_offers_it_again(runs_dir):
    """Step 4 reruns once a pair run ends (the one polling rule); a failed one is said, and offered again."""
    from fgff_core.store import RunStore

    cfg = lesson.parse_lesson_params({**SMALL, "step": "4"}, len(load_dataset("digits").y_test))[0].config
    store = RunStore(runs_dir)
    for algo, status in (("ff", "failed"), ("fgff", "cancelled")):
        assert store.finish_run(store.create_run(cfg.replace(algo=algo)), status, error="NaN loss")
    at = app(step="4")
    assert not at.exception, at.exception
    assert any("ended without a result: FF failed, FGFF cancelled" in e.value for e in at.error)
    assert "step4_train" in keys(at, "button")


def test_step4_without_the_pair_keeps_navigation_and_sharing(runs_dir):
    """Issue 15 case 13: before the pair is trained, Next/Back and the teacher panel stay on the page."""
    at = app(step="4")
    assert not at.exception
    assert {"step4_train", "nav_next", "nav_prev"} <= keys(at, "button")
    assert any("Teacher: share this lesson" in e.label for e in at.expander)
    # Issue 39 item 6: the link is the Learn page's, never localhost (AppTest has no browser URL: relative).
    (link,) = [c.value for c in at.code]
    assert link.startswith("/learn?step=4&") and "localhost" not in link and "me=" not in link
    # How long the pair will train, from the one estimate of the Train and Compare pages (issue 39 item 5).
    assert any("Train the pair once" in i.value and "of training (on an idle CPU" in i.value for i in at.info)


def test_step4_notes_that_the_paper_under_trains_ff_with_a_link_to_the_strong_preset(runs_dir):
    at = app(step="4")
    note = lesson.strong_ff_note()
    assert any(note.text in m.value for m in at.markdown)
    link = next(e.proto for e in at.get("page_link") if e.proto.label == note.link_label)
    assert link.query_string == "preset=ff-best-mnist-quick"  # the browser test follows it to Train
    assert not any(note.text in m.value for m in app(step="3").markdown)  # one note, in step 4 only


def test_a_link_that_hides_the_steps_can_train_what_step5_needs(runs_dir):
    """Issue 15 case 14: hide=step at step 5 must not strand students on an untrained network."""
    at = open_page("learn", step="5", hide="step")  # the default lesson net: 2x20, 200 epochs per layer
    assert not at.exception
    assert any("untrained" in w.value for w in at.warning)
    at.button(key="step5_train").click().run()
    assert not at.exception
    assert any("fully trained" in c.value for c in at.caption)
    confusion = next(c for c in at.get("plotly_chart") if "Test set (450 images)" in c.proto.spec)
    correct = float(confusion.proto.spec.split("Test set (450 images): ")[1].split(" %")[0])
    assert correct > 50.0
    # Issue 39 item 6: with no sample in the link, step 5 opens on one the network gets right.
    scores = next(c for c in at.get("plotly_chart") if "Goodness for each candidate label" in c.proto.spec)
    assert "(correct)" in scores.proto.spec and "sample" not in at.query_params


def test_step5_scores_confusion_and_own_digit(runs_dir):
    at = app(step="5", sample="2")
    assert not at.exception
    assert "Your own digit" in [s.value for s in at.subheader]
    # Before any stroke (the canvas is drawn on in tests/browser/test_draw_e2e.py), the sample is scored.
    assert any(c.value.startswith("Scored: test sample 2's pixels") for c in at.caption)
    at = app(step="5", hide="draw")
    assert "Your own digit" not in [s.value for s in at.subheader]
    assert len(at.get("plotly_chart")) == 3
