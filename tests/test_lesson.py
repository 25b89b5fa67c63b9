"""Teach mode logic (fgff_core.lesson): URL state, the per-step computations, image input."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from diverging import with_a_nan_pixel
from PIL import Image

from fgff_core import lesson
from fgff_core.engine.model import FFNet
from fgff_core.engine.training import train
from fgff_core.viz import lesson as vlesson

SMALL = dict(layers=(6, 5), epochs=4, eval_every=2)


# -- URL state ------------------------------------------------------------------------------------
def test_settings_round_trip_through_params():
    cfg = lesson.lesson_config("ff", lr=0.03, threshold=1.5, loss="hinge", layers=(12, 8, 6), seed=7, epochs=50,
                               sig_lr=0.2, delta=0.25)
    s = lesson.LessonSettings(step=4, config=cfg, sample=17, hide=frozenset({"lr", "step"}))
    params = s.to_params()
    assert params["hide"] == "lr,step" and params["layers"] == "12,8,6" and params["step"] == "4"
    back, errors = lesson.parse_lesson_params(params, n_samples=450)
    assert errors == []
    assert back == s


def test_defaults_are_the_tiny_digits_preset():
    s, errors = lesson.parse_lesson_params({}, n_samples=450)
    assert errors == [] and s.step == 1 and s.sample is None and not s.hide  # no sample chosen: each step picks
    assert "sample" not in s.to_params()
    assert s.config.layers == (20, 20) and s.config.dataset == "digits" and s.config.algo == "fgff"


@pytest.mark.parametrize("key,value,field", [
    ("lr", "-1", "lr"), ("threshold", "0", "threshold"), ("layers", "abc", "layers"), ("loss", "mse", "loss"),
    ("layers", "1000,1000", "layers"), ("epochs", "999999", "epochs"), ("seed", "x", "seed"),
    ("step", "9", "step"), ("sample", "450", "sample"), ("hide", "everything", "hide"), ("algo", "bp", "algo"),
])
def test_bad_params_are_reported_and_defaults_used(key, value, field):
    good = {"lr": "0.05", "seed": "3"}
    s, errors = lesson.parse_lesson_params({**good, key: value}, n_samples=450)
    assert len(errors) == 1 and errors[0].startswith(f"{field}=")
    default, _ = lesson.parse_lesson_params({k: v for k, v in good.items() if k != key}, n_samples=450)
    assert s == default  # the bad one fell back, the good ones were kept


def test_lesson_size_cap_names_the_field():
    with pytest.raises(ValueError, match="^layers:"):
        lesson.lesson_config(layers=(300,))
    with pytest.raises(ValueError, match="^algo:"):
        lesson.lesson_config("bp")


# -- step 1 and 2 ---------------------------------------------------------------------------------
def test_default_wrong_label_is_wrong_and_seeded():
    for true in range(10):
        for seed in range(5):
            w = lesson.default_wrong_label(true, seed)
            assert w != true and 0 <= w < 10
            assert w == lesson.default_wrong_label(true, seed)
    with pytest.raises(ValueError, match="wrong_label"):
        lesson.check_wrong_label(3, 3)


def test_layer_view_matches_the_equations(digits):
    torch.manual_seed(0)
    model = FFNet(64, (10, 7), label_value=1.0)
    with torch.no_grad():
        model.layers[1].s_raw.copy_(torch.linspace(-0.5, 2.0, 7))
    x = digits.x_test[5:6]
    true, wrong, thr, delta = int(digits.y_test[5]), (int(digits.y_test[5]) + 3) % 10, 0.3, 0.1
    for layer in (0, 1):
        v = lesson.layer_view(model, x, true, wrong, layer, thr, delta)
        # independent recomputation: plain (unfactorised) forward of the embedded inputs
        h = {}
        for name, label in (("pos", true), ("neg", wrong)):
            z = x.clone()
            z[:, :10] = 0
            z[0, label] = 1.0
            for lay in model.layers[:layer + 1]:
                z = F.relu(lay.linear(z / (z.norm(dim=1, keepdim=True) + 1e-4)))
            h[name] = z[0].detach().numpy()
        np.testing.assert_allclose(v.h_pos, h["pos"], atol=1e-5)
        np.testing.assert_allclose(v.h_neg, h["neg"], atol=1e-5)
        s = model.layers[layer].s().detach().numpy()
        gp, gn = np.mean(s * h["pos"] ** 2), np.mean(s * h["neg"] ** 2)
        assert v.g_pos == pytest.approx(gp, abs=1e-5) and v.g_neg == pytest.approx(gn, abs=1e-5)
        assert v.g_pos_no_significance == pytest.approx(np.mean(h["pos"] ** 2), abs=1e-5)
        softplus = np.mean([np.log1p(np.exp(thr - gp)), np.log1p(np.exp(gn - thr))])
        hinge = 0.5 * (max(0, delta - (gp - thr)) + max(0, delta - (thr - gn)))
        assert v.softplus == pytest.approx(softplus, abs=1e-5)
        assert v.hinge == pytest.approx(hinge, abs=1e-5)
    fig = vlesson.activations_figure(v)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2 and np.allclose(np.mean(bars[0].y), v.g_pos, atol=1e-5)
    # g_pos, g_neg and the threshold are named in the legend, never as labels that can overlap (issue 15 case 16)
    assert [t.name.split(" = ")[0] for t in fig.data if t.type == "scatter"] == ["g_pos", "g_neg", "threshold"]
    assert not fig.layout.annotations


# -- step 3 -----------------------------------------------------------------------------------------
def test_stepped_training_is_the_engine_run(digits):
    cfg = lesson.lesson_config("fgff", **SMALL)
    stepped = lesson.SteppedTraining(cfg, digits)
    assert stepped.total == 8 and stepped.position() == (0, 0)
    assert stepped.status_text() == "untrained (random weights)"
    assert stepped.layer_titles() == ["layer 1: waiting (untrained)", "layer 2: waiting (untrained)"]
    assert stepped.advance(1) == 1 and stepped.position() == (0, 1)
    assert stepped.status_text() == "layer 1 after 1 of 4 epochs (1/8 layer-epochs)"
    assert stepped.layer_titles() == ["layer 1: training, epoch 1/4", "layer 2: waiting (untrained)"]
    assert stepped.advance(3) == 3 and stepped.position() == (1, 0)  # layer 1 done, layer 2 next
    assert stepped.layer_titles() == ["layer 1: trained, frozen", "layer 2: training, epoch 0/4"]
    assert stepped.advance(10) == 4 and stepped.is_finished
    assert stepped.status_text() == "fully trained (8 layer-epochs)"
    assert stepped.layer_titles() == ["layer 1: trained, frozen", "layer 2: trained, frozen"]
    assert stepped.advance(1) == 0
    _, result = train(cfg, digits)
    events = []
    train(cfg, digits, callback=events.append)
    losses = [e.loss for e in events if e.kind == "epoch"]
    assert stepped.history_frame()["loss"].tolist() == pytest.approx(losses, rel=1e-6)
    assert stepped.finished.test_acc == pytest.approx(result.test_acc)
    assert len(stepped.evals) == 4  # eval_every=2: epochs 2 and 4 of each layer



def test_stepped_training_ends_failed_at_a_nan_loss_in_the_same_advance(digits):
    stepped = lesson.SteppedTraining(lesson.lesson_config("fgff", **SMALL), with_a_nan_pixel(digits))
    assert stepped.advance(1) == 1 and stepped.is_finished
    assert stepped.finished.status == "failed"
    assert stepped.finished.reason.startswith("NaN loss at layer 1 of 2, epoch 1. Hint: lower lr")
    assert stepped.status_text() == f"failed: {stepped.finished.reason}"
    assert stepped.layer_titles() == ["layer 1: failed at epoch 1/4", "layer 2: waiting (untrained)"]
    assert stepped.advance(1) == 0


def test_two_threads_advancing_one_training_take_turns(digits):
    """Streamlit starts a new script thread on a click without waiting for the running one (fast reruns),
    so two threads can advance one lesson training at once; each must see whole advances, none an error."""
    cfg = lesson.lesson_config("ff", layers=(20, 20), epochs=60)
    stepped = lesson.SteppedTraining(cfg, digits)
    errors: list[BaseException] = []

    def advance_in_steps() -> None:
        try:
            for _ in range(6):
                stepped.advance(10)
        except BaseException as e:  # noqa: BLE001 - the test reports whatever the thread raised
            errors.append(e)

    threads = [threading.Thread(target=advance_in_steps) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stepped.done == 120 and stepped.is_finished
    assert len({(e.layer, e.epoch) for e in stepped.history}) == 120  # every layer-epoch once
    with stepped.lock:  # held by a reader: an advance in another thread waits for it
        done = stepped.done
        worker = threading.Thread(target=stepped.advance, args=(1,))
        worker.start()
        worker.join(timeout=0.5)
        assert stepped.done == done
    worker.join()

def test_goodness_distributions_separate_as_the_layer_learns(digits):
    cfg = lesson.lesson_config("ff", layers=(20,), epochs=100)
    stepped = lesson.SteppedTraining(cfg, digits)
    x, y = digits.x_train, digits.y_train
    before = lesson.goodness_distributions(stepped.model, x, y, cfg.seed)
    assert len(before) == 1 and before[0].g_pos.shape == (len(y),)
    stepped.advance(100)
    after = lesson.goodness_distributions(stepped.model, x, y, cfg.seed)
    assert after[0].separation(cfg.threshold) > before[0].separation(cfg.threshold) + 0.2
    assert after[0].g_pos.mean() > cfg.threshold > after[0].g_neg.mean()
    fig = vlesson.distributions_figure(after, cfg.threshold)
    assert len(fig.data) == 2


# -- step 4 and 5 -------------------------------------------------------------------------------------
def test_neuron_roles_from_factors():
    df = pd.DataFrame({"layer": 0, "neuron": range(5), "significance": [1.5, 0.5, -0.2, 1.01, 0.96],
                       "pos_activity": 1.0, "neg_activity": 0.5, "activity_diff": [0.5, 0.1, -0.3, 0.0, 0.2]})
    roles = lesson.neuron_roles(df)
    assert roles["role"].tolist() == ["feature detector", "damped", "constraint-violation detector", "neutral",
                                      "neutral"]
    counts = lesson.role_counts(roles)
    assert counts.set_index("role")["neurons"].to_dict() == {
        "feature detector": 1, "damped": 1, "constraint-violation detector": 1, "neutral": 2}
    two_layers = pd.concat([roles, roles.assign(layer=1)], ignore_index=True)
    table = lesson.role_table(lesson.role_counts(two_layers.iloc[:-1]))  # layer 2 has one neutral neuron fewer
    assert list(table.columns) == ["layer 1", "layer 2"]
    assert table.loc["neutral"].tolist() == [2, 1] and table.loc["damped"].tolist() == [1, 1]


def test_ff_neurons_are_all_neutral_and_confusion_matches_accuracy(digits):
    trainer, result = train(lesson.lesson_config("ff", **SMALL), digits)
    roles = lesson.model_activity(trainer.model, digits)
    assert (roles["role"] == "neutral").all() and len(roles) == 11
    cm = lesson.confusion(trainer.model, digits.x_test, digits.y_test)
    assert cm.shape == (10, 10) and cm.sum() == len(digits.y_test)
    assert np.trace(cm) / cm.sum() == pytest.approx(result.test_acc)
    g_sig, g_raw = lesson.label_scores(trainer.model, digits.x_test[3])
    assert g_sig.shape == (10,) and np.allclose(g_sig, g_raw)  # FF: factors are 1
    assert vlesson.confusion_figure(cm).data[0].z.sum() == len(digits.y_test)


def test_input_to_pixels_gives_back_the_digits_grid(digits):
    from sklearn.datasets import load_digits

    grids = {tuple(g.ravel()) for g in load_digits().images.astype(int)}
    for i in range(5):
        pixels = lesson.input_to_pixels(digits.x_test[i:i + 1], digits)
        assert pixels.shape == (8, 8) and pixels.dtype.kind == "i"
        assert tuple(pixels.ravel()) in grids  # exactly one of the dataset's 0..16 images
        back = lesson.pixels_to_input(pixels, digits)
        assert torch.allclose(back, digits.x_test[i:i + 1].reshape(1, -1), atol=1e-4)


def test_pixels_to_input_matches_the_dataset_normalisation(digits):
    raw = digits.denormalise(digits.x_test[:3])[:, 0].numpy()  # back to 0..16 pixels
    for i in range(3):
        x = lesson.pixels_to_input(np.clip(raw[i], 0, 16), digits)
        np.testing.assert_allclose(x[0].numpy(), digits.x_test[i].numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="pixels"):
        lesson.pixels_to_input(np.zeros((7, 7)), digits)
    with pytest.raises(ValueError, match="pixels"):
        lesson.pixels_to_input(np.full((8, 8), 17.0), digits)


def _bar_image(mode: str) -> Image.Image:
    """A vertical bar (a '1') in the middle of a 100x100 picture."""
    if mode == "scan":  # black ink on white paper
        arr = np.full((100, 100), 255, np.uint8)
        arr[20:80, 45:55] = 0
        return Image.fromarray(arr)
    arr = np.zeros((100, 100, 4), np.uint8)  # canvas: white strokes on a transparent background
    arr[20:80, 45:55] = 255
    return Image.fromarray(arr, "RGBA")


@pytest.mark.parametrize("mode", ["scan", "canvas"])
def test_image_to_pixels_centres_ink_on_8x8(mode):
    px = lesson.image_to_pixels(_bar_image(mode))
    assert px.shape == (8, 8) and px.max() == pytest.approx(16.0) and px.min() >= 0
    assert px[:, 3:5].sum() > 0.8 * px.sum()  # the ink is in the middle columns
    assert px[0, 0] == 0 and px[7, 7] == 0


def test_empty_image_is_all_zero():
    assert lesson.image_to_pixels(Image.new("L", (50, 50), 255)).sum() == 0


def _data_url(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    mime = "png" if fmt == "PNG" else fmt.lower()
    return f"data:image/{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


def test_a_canvas_drawing_is_down_sampled_like_a_picture():
    bar = _bar_image("canvas")
    px = lesson.drawing_to_pixels(_data_url(bar))
    np.testing.assert_array_equal(px, lesson.image_to_pixels(bar))  # one rule for drawings and pictures
    assert px[:, 3:5].sum() > 0.8 * px.sum()
    assert lesson.drawing_to_image(_data_url(bar)).mode == "RGBA"
    blank = Image.new("RGBA", (lesson.CANVAS_SIZE, lesson.CANVAS_SIZE))
    assert lesson.drawing_to_pixels(_data_url(blank)).sum() == 0


@pytest.mark.parametrize("payload, words", [
    (None, "got NoneType"),
    (["data:image/png;base64,"], "got list"),
    ("hello", "PNG data URL starting with"),
    ("data:image/png;base64,@@@@", "not valid base64"),
    ("data:image/png;base64," + base64.b64encode(b"not a png at all").decode(), "not a readable PNG"),
    ("data:image/png;base64," + "A" * lesson.drawing.MAX_DRAWING_CHARS, "more than the"),
])
def test_a_bad_drawing_payload_is_a_value_error_naming_the_drawing(payload, words):
    with pytest.raises(ValueError, match=f"drawing: .*{words}"):
        lesson.drawing_to_pixels(payload)


def test_a_drawing_must_be_a_png_of_sane_size():
    jpeg = _data_url(Image.new("RGB", (20, 20)), "JPEG").replace("image/jpeg", "image/png")
    with pytest.raises(ValueError, match="drawing: expected a PNG image, got JPEG"):
        lesson.drawing_to_image(jpeg)
    side = lesson.drawing.MAX_DRAWING_SIDE + 1
    with pytest.raises(ValueError, match=rf"drawing: {side}x1 pixels"):
        lesson.drawing_to_image(_data_url(Image.new("L", (side, 1))))
    buf = io.BytesIO()
    _bar_image("canvas").save(buf, format="PNG")
    cut_off = "data:image/png;base64," + base64.b64encode(buf.getvalue()[:-40]).decode()
    with pytest.raises(ValueError, match="drawing: not a readable PNG"):
        lesson.drawing_to_image(cut_off)


# -- step 4's stored pair ---------------------------------------------------------------------------
def _run_row(cfg, status, run_id, test_acc=0.9, no_sig=0.85):
    return dict(run_id=run_id, status=status, algo=cfg.algo, config=cfg.to_dict(), test_acc=test_acc,
                test_acc_no_significance=no_sig)


def test_lesson_pair_finds_the_newest_reusable_run_of_exactly_the_config():
    cfg = lesson.lesson_config("fgff", **SMALL)
    ff, fgff = cfg.replace(algo="ff"), cfg
    runs = pd.DataFrame([  # newest first, as the store lists them
        _run_row(fgff, "failed", "f-failed"),
        _run_row(fgff, "done", "f-new", test_acc=0.92, no_sig=0.95),
        _run_row(fgff.replace(seed=1), "done", "other-seed"),
        _run_row(fgff, "done", "f-old"),
        _run_row(ff, "running", "ff-running"),
    ])
    assert lesson.find_stored_run(pd.DataFrame(), cfg) is None
    pair = lesson.LessonPair.find(runs, cfg)
    assert pair.runs["fgff"]["run_id"] == "f-new" and pair.runs["ff"]["run_id"] == "ff-running"
    assert pair.missing == [] and not pair.all_done
    done = lesson.LessonPair.find(runs.assign(status="done").iloc[1:], cfg)
    assert done.all_done
    bars = done.accuracy_bars()
    assert [b.label for b in bars] == ["FF", "FGFF", "FGFF, factors dropped"]
    assert [b.algo for b in bars] == ["ff", "fgff", "ff"] and bars[1].accuracy == 0.92
    assert done.factor_drop() == pytest.approx(0.03)  # 95 % without the factors vs 92 % with them
    assert lesson.LessonPair.find(runs.iloc[:1], cfg).missing == ["ff", "fgff"]


def test_a_pair_run_that_ended_without_a_result_says_so_until_it_is_trained_again():
    """Step 4 reruns once a pair run ends; a failed one is offered for training again, with how it ended."""
    cfg = lesson.lesson_config("fgff", **SMALL)
    ff, fgff = cfg.replace(algo="ff"), cfg
    failed = lesson.LessonPair.find(pd.DataFrame([_run_row(ff, "failed", "ff-failed"),
                                                  _run_row(fgff, "done", "f-done")]), cfg)
    assert failed.missing == ["ff"] and lesson.ended_without_result(failed.ended) == ["FF failed"]
    retried = lesson.LessonPair.find(pd.DataFrame([_run_row(ff, "queued", "ff-again"),
                                                   _run_row(ff, "failed", "ff-failed"),
                                                   _run_row(fgff, "done", "f-done")]), cfg)
    assert retried.missing == [] and retried.ended == {}
    other = lesson.LessonPair.find(pd.DataFrame([_run_row(ff.replace(seed=1), "failed", "ff-other-seed")]), cfg)
    assert other.ended == {}  # another config's failure says nothing about this one


def test_pair_statuses_in_words():
    assert lesson.ended_without_result({"ff": "done", "fgff": "failed"}) == ["FGFF failed"]
    assert lesson.ended_without_result({"ff": "interrupted", "fgff": "running"}) == ["FF interrupted"]
    assert lesson.ended_without_result({"ff": "queued", "fgff": "done"}) == []
    cfg = lesson.lesson_config("ff", layers=(8, 6), seed=3)
    assert lesson.pair_job_name(cfg, "ff") == "lesson ff 8,6 seed 3"


def test_an_imported_checkpoint_without_accuracies_is_never_the_pair():
    """Issue 15 case 3: an imported run is done but has no evaluated accuracies: "nan %" in the lesson."""
    cfg = lesson.lesson_config("fgff", **SMALL)
    runs = pd.DataFrame([
        _run_row(cfg, "done", "imported", test_acc=float("nan"), no_sig=float("nan")),
        _run_row(cfg, "done", "trained", test_acc=0.9, no_sig=0.88),
        _run_row(cfg.replace(algo="ff"), "done", "ff", test_acc=0.85, no_sig=0.85),
    ])
    pair = lesson.LessonPair.find(runs, cfg)
    assert pair.runs["fgff"]["run_id"] == "trained" and pair.all_done
    assert lesson.find_stored_run(runs.iloc[:1], cfg) is None
    running = runs.assign(status=["running", "done", "done"])
    assert lesson.find_stored_run(running, cfg)["run_id"] == "imported"  # still training: no accuracies yet
    assert lesson.find_stored_run(running, cfg, trained_only=True)["run_id"] == "trained"


def test_the_strong_ff_note_names_the_paper_settings_and_only_what_the_recipe_uses():
    from fgff_core.config import RunConfig
    from fgff_core.config.presets import MNIST_DEMO, PRESETS

    note = lesson.strong_ff_note()
    assert note.preset == MNIST_DEMO and note.link_params() == {"preset": MNIST_DEMO}
    assert "(full batch, 200 steps per layer), under-train FF" in note.text
    assert PRESETS[MNIST_DEMO].title in note.link_label and "MNIST" in note.text
    for ingredient in lesson.recipe_ingredients(PRESETS[MNIST_DEMO].config()):
        assert ingredient in note.text
    assert lesson.recipe_ingredients(RunConfig()) == []  # the paper's settings: nothing to name
    strong = RunConfig(batch_size=100, hard_negatives=1.0, loss="symba", lr_schedule="cosine", peer_norm=0.03)
    assert lesson.recipe_ingredients(strong) == ["minibatches of 100", "hard negatives", "the SymBa loss",
                                                 "cosine learning-rate decay", "peer normalisation"]
    assert lesson.recipe_ingredients(strong.replace(hard_negatives=0.3))[1] == "30 % hard negatives"


def test_step5_opens_on_the_first_sample_the_network_gets_right(digits):
    """Issue 39 item 6: step 5 opened on test sample 0, which the network got wrong."""
    model = FFNet(64, (6, 5), label_value=1.0)
    x = digits.x_test[:20]
    pred = model.predict(x.float())
    y = pred.clone()
    y[:7] = (pred[:7] + 1) % 10  # the first 7 wrong, the 8th right
    assert lesson.first_correct_sample(model, x, y) == 7
    assert lesson.first_correct_sample(model, x, (pred + 1) % 10) == 0  # none right: the first


# -- the teacher's share link ----------------------------------------------------------------------------
def test_the_share_link_keeps_the_address_the_teachers_browser_used():
    from fgff_core.lesson.share import share_link

    link = share_link("https://class.example.org/fgff/learn", "ignored:1", {"step": "3", "hide": "lr,step"}, "10.0.0.5")
    assert link == ("https://class.example.org/fgff/learn?step=3&hide=lr%2Cstep", None)
    # No URL from the browser: the request's Host header, with the Learn page's path.
    assert share_link(None, "192.168.1.20:8501", {"step": "2"}).url == "http://192.168.1.20:8501/learn?step=2"
    assert share_link(None, None, {"step": "2"}).url == "/learn?step=2"  # nothing known: a relative link


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_the_share_link_never_names_localhost(host):
    """Issue 39 item 6: the teacher, on the serving machine, handed out http://localhost:8501/... links."""
    from fgff_core.lesson.share import share_link

    link = share_link(f"http://{host}:8501/learn", None, {"step": "1"}, lan_address="192.168.1.20")
    assert link.url == "http://192.168.1.20:8501/learn?step=1" and "192.168.1.20" in link.note
    unknown = share_link(None, f"{host}:8501", {"step": "1"}, lan_address=None)
    assert "only this computer can open" in unknown.note
