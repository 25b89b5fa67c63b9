"""Benchmark FF, FGFF and BP training and prediction against the machine's own matmul limit.

    python -m benchmarks.run --data-dir /work/shared/datasets          # full run, writes benchmarks/RESULTS.md + .csv
    python -m benchmarks.run --quick --out /tmp/bench                  # smoke run, a few seconds

Everything is timed through the engine's real code paths: training epochs are ``Trainer.run()``
steps (one ``EpochMetrics`` per ``next()`` with ``log_every=1`` and no evaluation, timed around
the ``next()`` call, first epoch of each layer dropped as warm-up); prediction is
``FFNet.label_goodness`` on the test set. The variants (plain and factorised first layer, FF and
FGFF, the matmul reference) are stepped round-robin, one epoch each per round, so that load from
other processes hits all of them alike; figures are medians over rounds.

The "hardware limit" is the FLOP rate of plain ``torch.mm`` on the shapes of one plain training
epoch of the same layer (forward ``(2N x D) @ (D x H)`` and weight gradient ``(H x 2N) @ (2N x D)``),
measured in the same rounds. Each training figure is given as a fraction of it, two ways for the
factorised layer: ``effective`` counts the FLOPs of the plain formulation (what the work is worth),
``own`` counts the FLOPs the factorised path really does.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks.timing import (
    MINIBATCH,
    N_CLASSES,
    EpochStepper,
    MatmulReference,
    Setup,
    get_data,
    measure_peak_memory,
    paired_ratio,
    peak_memory,
    round_robin,
    run_config,
    time_bp,
    time_prediction,
)
from fgff_core.data import DATA_DIR_ENV, Dataset
from fgff_core.engine.label_input import first_layer_input
from fgff_core.engine.runtime import retain_freed_memory

HERE = Path(__file__).resolve().parent



# -- the benchmark ------------------------------------------------------------------------------

@dataclass
class Results:
    rows: list[dict] = field(default_factory=list)
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (target, measured, verdict)
    notes: list[str] = field(default_factory=list)

    def add(self, **row) -> None:
        self.rows.append(row)


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def factorised_flops(n: int, d_in: int, h: int) -> float:
    """FLOPs of a factorised layer-1 epoch: the positive product and its weight gradient (2 N D H each),
    and the thin relabelling product for the negatives and its gradient (2 N classes H each)."""
    return 4.0 * n * d_in * h + 4.0 * n * N_CLASSES * h


def bench_device(setup: Setup, data: Dataset, args: argparse.Namespace, res: Results, log) -> None:
    dev = setup.device
    n, n_test, d = len(data.y_train), len(data.y_test), data.input_dim
    sizes = [d, *setup.layers]
    variants = {
        "ff plain": EpochStepper("ff plain", run_config(setup, "ff", False), data),
        "ff factorised": EpochStepper("ff factorised", run_config(setup, "ff", True), data),
        "fgff plain": EpochStepper("fgff plain", run_config(setup, "fgff", False), data),
        "fgff factorised": EpochStepper("fgff factorised", run_config(setup, "fgff", True), data),
    }
    speed_modes = {"bf16": dict(precision="bf16"), "tf32": dict(precision="tf32"), "compile": dict(compile=True)}
    modes = [m for m in speed_modes if (m != "bf16" or setup.bf16) and (m != "tf32" or dev.startswith("cuda"))
             and (m != "compile" or setup.compile)]  # tf32 changes CUDA matmuls only
    for mode in modes:
        variants[f"ff factorised {mode}"] = EpochStepper(f"ff factorised {mode}",
                                                         run_config(setup, "ff", True, **speed_modes[mode]), data)
    minibatch = f"batch{MINIBATCH}"  # the strong recipes' minibatches: do both first-layer paths keep their speed?
    for path, factorize in (("plain", False), ("factorised", True)):
        name = f"ff {path} {minibatch}"
        variants[name] = EpochStepper(name, run_config(setup, "ff", factorize, batch_size=MINIBATCH), data)
    matmul = MatmulReference(dev, n, sizes)
    log(f"{dev}: {len(variants)} training variants, {setup.epochs} epochs per layer, round-robin with the matmul "
        f"reference")
    round_robin([*variants.values(), matmul], setup.epochs * len(setup.layers), log)

    # -- training epochs -------------------------------------------------------------------------
    for i, (d_in, h) in enumerate(zip(sizes[:-1], sizes[1:])):
        limit = matmul.flop_rate(i)
        plain_flops = 8.0 * n * d_in * h  # 2 passes (pos, neg) x (forward + weight gradient) x 2 N D H
        fact_flops = factorised_flops(n, d_in, h) if i == 0 else plain_flops
        res.add(device=dev, measure="matmul limit", algo="torch.mm", path="-", layer=i + 1,
                seconds=statistics.median(matmul.seconds[i]), best_seconds=min(matmul.seconds[i]), samples_per_s=None,
                gflop=matmul.flops(i) / 1e9,
                gflops_per_s=limit / 1e9, frac_effective=1.0, frac_own=1.0, peak_mib=None,
                reps=len(matmul.seconds[i]))
        for name, v in variants.items():
            sec = v.median(i)
            own = fact_flops if "factorised" in name else plain_flops
            res.add(device=dev, measure="train epoch", algo=name.split()[0], path=" ".join(name.split()[1:]),
                    layer=i + 1, seconds=sec, best_seconds=v.best(i), samples_per_s=n / sec, gflop=own / 1e9,
                    gflops_per_s=own / sec / 1e9,
                    frac_effective=plain_flops / sec / limit, frac_own=own / sec / limit, peak_mib=None,
                    reps=len(v.seconds[i]))

    # -- prediction ------------------------------------------------------------------------------
    models = {name: v.trainer.model for name, v in variants.items() if not name.endswith((*modes, minibatch))}
    x_test, y_test = variants["ff plain"].trainer.data.x_test, variants["ff plain"].trainer.data.y_test
    pred = time_prediction(models, x_test, setup.eval_chunk, setup.predict_reps, dev)
    pred_flops = 10.0 * n_test * sum(2.0 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    chunks = {name: setup.eval_chunk or m.first_input.prediction_chunk(torch.device(dev)) for name, m in models.items()}
    res.notes.append(f"{dev}: prediction chunks (samples): " + ", ".join(f"{k} {v}" for k, v in chunks.items())
                     + (" (automatic: each path's fastest measured chunk on the benchmark machine)"
                        if not setup.eval_chunk else ""))
    for name, sec in pred.items():
        res.add(device=dev, measure="predict test set", algo=name.split()[0], path=" ".join(name.split()[1:]),
                layer="all", seconds=sec, samples_per_s=n_test / sec, gflop=pred_flops / 1e9,
                gflops_per_s=pred_flops / sec / 1e9, frac_effective=pred_flops / sec / matmul.flop_rate(0),
                frac_own=None, peak_mib=None, reps=setup.predict_reps)

    # -- BP ----------------------------------------------------------------------------------------
    log(f"{dev}: BP")
    bp = time_bp(setup, data)
    bp_epoch, bp_pred, n_sub = bp.epoch_seconds, bp.predict_seconds, bp.n_subset
    bp_flops = 6.0 * n * sum(a * b for a, b in zip([*sizes], [*sizes[1:], N_CLASSES])) - 2.0 * n * d * sizes[1]
    res.add(device=dev, measure="train epoch", algo="bp", path=f"batch {setup.bp_batch_size}", layer="all",
            seconds=bp_epoch, samples_per_s=n / bp_epoch, gflop=bp_flops / 1e9, gflops_per_s=bp_flops / bp_epoch / 1e9,
            frac_effective=bp_flops / bp_epoch / matmul.flop_rate(0), frac_own=None, peak_mib=None, reps=2)
    res.add(device=dev, measure="predict test set", algo="bp", path="-", layer="all", seconds=bp_pred,
            samples_per_s=n_test / bp_pred, gflop=None, gflops_per_s=None, frac_effective=None, frac_own=None,
            peak_mib=None, reps=setup.predict_reps)
    res.notes.append(f"{dev}: BP epoch time is the median of 2 epochs over the first {n_sub} training samples "
                     f"({n_sub // setup.bp_batch_size} batches of {setup.bp_batch_size}), scaled to {n} samples. "
                     f"Its limit fraction counts forward + weight and input gradients against the full-batch matmul "
                     f"limit, which batch-64 shapes cannot reach.")

    # -- peak memory -----------------------------------------------------------------------------
    if not args.no_memory:
        log(f"{dev}: peak memory")
        if not dev.startswith("cuda"):
            res.notes.append(f"{dev}: peak memory is the resident-set high-water mark of a fresh process per "
                             "variant, with glibc's default allocator (retained free memory would add heap "
                             "fragmentation to it).")
        for algo in ("ff", "fgff"):
            for factorize in (False, True):
                mib = peak_memory(setup, args, algo, factorize, data)
                res.add(device=dev, measure="peak memory (2 epochs/layer + predict)", algo=algo,
                        path="factorised" if factorize else "plain", layer="all", seconds=None, samples_per_s=None,
                        gflop=None, gflops_per_s=None, frac_effective=None, frac_own=None, peak_mib=mib, reps=1)

    # -- checks against the targets --------------------------------------------------------
    ffp, fff = variants["ff plain"], variants["ff factorised"]
    speedup = paired_ratio(ffp, fff, 0)
    res.checks.append((f"{dev}: layer-1 FF epoch, plain / factorised >= 1.8", f"{speedup:.2f}x paired "
                       f"(medians {ffp.median(0):.3f} s / {fff.median(0):.3f} s; best {ffp.best(0):.3f} s / "
                       f"{fff.best(0):.3f} s = {ffp.best(0) / fff.best(0):.2f}x)", _verdict(speedup >= 1.8)))
    pspeed = pred["ff plain"] / pred["ff factorised"]
    res.checks.append((f"{dev}: predict {n_test} test samples, plain / factorised >= 2",
                       f"{pspeed:.2f}x ({pred['ff plain']:.3f} s / {pred['ff factorised']:.3f} s)",
                       _verdict(pspeed >= 2.0)))
    limit = matmul.flop_rate(0)
    frac_eff = 8.0 * n * d * sizes[1] / fff.median(0) / limit
    frac_own = factorised_flops(n, d, sizes[1]) / fff.median(0) / limit
    frac_plain = 8.0 * n * d * sizes[1] / ffp.median(0) / limit
    res.checks.append((f"{dev}: layer-1 FF factorised epoch >= 60% of the matmul limit (effective: plain FLOPs)",
                       f"{frac_eff:.0%}", _verdict(frac_eff >= 0.6)))
    res.checks.append((f"{dev}: the same, counting the factorised path's own FLOPs", f"{frac_own:.0%}",
                       _verdict(frac_own >= 0.6)))
    res.checks.append((f"{dev}: the plain path for comparison (its own = effective FLOPs)", f"{frac_plain:.0%}",
                       _verdict(frac_plain >= 0.6)))
    fg = variants["fgff factorised"]
    for i in range(len(setup.layers)):
        over = paired_ratio(fg, fff, i) - 1
        res.checks.append((f"{dev}: FGFF overhead over FF, layer {i + 1} epoch (factorised) < 2%",
                           f"{over:+.1%} paired (medians {fg.median(i):.3f} s vs {fff.median(i):.3f} s; best "
                           f"{fg.best(i):.3f} s vs {fff.best(i):.3f} s = {fg.best(i) / fff.best(i) - 1:+.1%})",
                           _verdict(over < 0.02)))
    fgp = variants["fgff plain"]
    over_p = paired_ratio(fgp, ffp, 0) - 1
    res.checks.append((f"{dev}: FGFF overhead over FF, layer 1 epoch (plain path) < 2%", f"{over_p:+.1%} paired "
                       f"(best {fgp.best(0) / ffp.best(0) - 1:+.1%})", _verdict(over_p < 0.02)))

    # same results: plain and factorised runs with the same seed
    for algo in ("ff", "fgff"):
        a, b = variants[f"{algo} plain"], variants[f"{algo} factorised"]
        dloss = max(abs(p - q) for p, q in zip(a.losses, b.losses))
        acc_a = a.trainer.accuracy(x_test, y_test).with_significance
        acc_b = b.trainer.accuracy(x_test, y_test).with_significance
        with torch.no_grad():  # the same trained net, predicted through both first-layer paths
            m = b.trainer.model
            fast = m.predict(x_test, chunk=setup.eval_chunk)
            m.first_input = first_layer_input(False, m.label_value, m.n_classes)
            slow = m.predict(x_test, chunk=setup.eval_chunk)
            m.first_input = first_layer_input(True, m.label_value, m.n_classes)
        flips = int((fast != slow).sum())
        res.checks.append((f"{dev}: {algo.upper()} same results, plain vs factorised, {len(a.losses)} epochs, "
                           "same seed",
                           f"max |loss diff| {dloss:.1e}; test acc {acc_a:.4f} vs {acc_b:.4f}; "
                           f"{flips} of {n_test} predictions differ between the paths on one net",
                           _verdict(dloss < 1e-3 and abs(acc_a - acc_b) <= 0.002)))
    acc_fp = fff.trainer.accuracy(x_test, y_test).with_significance
    for mode in modes:
        fast = variants[f"ff factorised {mode}"]
        dloss = max(abs(p - q) for p, q in zip(fast.losses, fff.losses))
        acc = fast.trainer.accuracy(x_test, y_test).with_significance
        res.checks.append((f"{dev}: speed mode {mode} (off by default), FF factorised vs fp32",
                           ", ".join(f"layer {i + 1} {paired_ratio(fff, fast, i):.2f}x"
                                     for i in range(len(setup.layers)))
                           + f" speed; max |loss diff| {dloss:.1e}; "
                           f"test acc {acc:.4f} vs fp32 {acc_fp:.4f}", "info"))
    mb_plain, mb_fact = variants[f"ff plain {minibatch}"], variants[f"ff factorised {minibatch}"]
    res.checks.append((f"{dev}: minibatches of {MINIBATCH} (FF, layer 1): samples/s and plain / factorised",
                       f"factorised {n / mb_fact.median(0):,.0f} samples/s vs full batch {n / fff.median(0):,.0f}; "
                       f"plain {n / mb_plain.median(0):,.0f}; plain / factorised "
                       f"{paired_ratio(mb_plain, mb_fact, 0):.2f}x (full batch {speedup:.2f}x)", "info"))


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = dict(machine=f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
                python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


ANALYSIS_MARKER = "<!-- analysis: kept across reruns -->"
COLUMNS = ["device", "measure", "algo", "path", "layer", "seconds", "best_seconds", "samples_per_s", "gflop",
           "gflops_per_s", "frac_effective", "frac_own", "peak_mib", "reps"]


def write_results(out: Path, res: Results, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"# {k}: {v}" for k, v in meta.items()])
        w.writerow(COLUMNS)
        for row in res.rows:
            w.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS])
    lines = ["# Benchmark results", "",
             "Generated by `python -m benchmarks.run` (see the docstring of `benchmarks/run.py` for the method).", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    lines += ["", "## Targets of the issue", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |".replace("|loss diff|", "\\|loss diff\\|") for t, m, v in res.checks]
    lines += ["", "## All figures", "",
              "`seconds`: median per layer-epoch (train), per pass over the test set (predict). "
              "`frac eff.`: FLOPs of the plain formulation / seconds / matmul limit (for the factorised layer 1 this "
              "counts the work it avoids, so it can exceed 100%). `frac own`: the FLOPs the path really does / "
              "seconds / matmul limit. Prediction fractions count 10 full passes against the layer-1 limit.", "",
              "| device | measure | algo | path | layer | seconds | best s | samples/s | GFLOP | GFLOP/s | frac eff. "
              "| frac own | peak MiB | reps |", "|" + "---|" * 14]
    for r in res.rows:
        pct = {k: (None if r[k] is None else f"{r[k]:.0%}") for k in ("frac_effective", "frac_own")}
        lines.append("| " + " | ".join([str(r["device"]), r["measure"], r["algo"], r["path"], str(r["layer"]),
                                       fmt(r["seconds"]), fmt(r.get("best_seconds")), fmt(r["samples_per_s"]),
                                       fmt(r["gflop"]),
                                       fmt(r["gflops_per_s"]), pct["frac_effective"] or "", pct["frac_own"] or "",
                                       fmt(r["peak_mib"]) if r["peak_mib"] is not None else "", str(r["reps"])])
                     + " |")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in res.notes] + [""]
    path = out / "RESULTS.md"
    kept = path.read_text().split(ANALYSIS_MARKER, 1)[1] if path.exists() and ANALYSIS_MARKER in path.read_text() \
        else "\n## Analysis\n\n(hand-written; text below the marker is kept when the tables are regenerated)\n"
    path.write_text("\n".join(lines) + "\n" + ANALYSIS_MARKER + kept)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get(DATA_DIR_ENV),
                   help=f"folder with the dataset files (default: ${DATA_DIR_ENV}); random data when absent")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--layers", default="500,500")
    p.add_argument("--devices", default="auto", help="comma-separated; auto = cpu, plus cuda when present")
    p.add_argument("--epochs", type=int, default=None, help="epochs per layer per variant (default 8; quick 3)")
    p.add_argument("--predict-reps", type=int, default=None, help="(default 7; quick 2)")
    p.add_argument("--bp-batches", type=int, default=None, help="BP batches of 64 timed per epoch (default 150)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the CPU runs")
    p.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast speed-mode variant")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile speed-mode variant")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--quick", action="store_true", help="small data and few repetitions: a smoke run")
    p.add_argument("--out", default=None, help="folder for RESULTS.md and results.csv (default: benchmarks/ for a "
                   "full run, nothing written for --quick)")
    p.add_argument("--system-allocator", action="store_true",
                   help="leave glibc's default allocator settings (by default the benchmark calls "
                        "fgff_core.retain_freed_memory(), as the CLI and the job workers do)")
    p.add_argument("--probe-memory", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Results:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.probe_memory:  # child process of peak_memory(): one measurement, printed
        # glibc's default allocator here: with freed memory retained, the resident high-water mark
        # also counts heap fragmentation (it varied by +-25% between identical probes)
        spec = json.loads(args.probe_memory)
        data, _ = get_data(args.dataset, args.data_dir, args.quick)
        setup = Setup(spec["device"], tuple(spec["layers"]), 2, 1, 1)
        print(measure_peak_memory(setup, data, spec["algo"], spec["factorize"]))
        return Results()
    allocator = "glibc default" if args.system_allocator else (
        "glibc, freed memory retained (fgff_core.retain_freed_memory)" if retain_freed_memory()
        else "system default (retain_freed_memory not available here)")
    layers = tuple(int(v) for v in args.layers.split(","))
    quick = args.quick
    if quick and args.layers == "500,500":
        layers = (64, 32)
    devices = args.devices.split(",") if args.devices != "auto" else ["cpu"] + (
        ["cuda"] if torch.cuda.is_available() else [])
    data, data_label = get_data(args.dataset, args.data_dir, quick)
    started = time.time()

    def log(msg: str) -> None:
        print(f"[bench {time.time() - started:6.1f}s] {msg}", flush=True)

    meta = dict(date=dt.datetime.now().isoformat(timespec="seconds"), **machine_info(), data=data_label,
                config=f"layers {'x'.join(map(str, layers))}, full batch, Adam lr 0.06, sig_lr 0.15, softplus, "
                       f"threshold 2, seed 0; BP batch 64, lr 0.001",
                devices=", ".join(devices), allocator=allocator, load_average_start=load_average())
    if "cuda" not in devices:
        meta["gpu_note"] = ("no CUDA device in this run" + ("" if torch.cuda.is_available() else
                            " (none present on this machine); the script times CUDA when one is present"))
    res = Results()
    for device in devices:
        setup = Setup(device, layers, epochs=args.epochs or (3 if quick else 8),
                      predict_reps=args.predict_reps or (2 if quick else 7),
                      bp_batches=args.bp_batches or (5 if quick else 150), bf16=not args.no_bf16,
                      compile=not args.no_compile)
        bench_device(setup, data, args, res, log)
    meta["load_average_end"] = load_average()
    meta["wall_seconds"] = f"{time.time() - started:.0f}"
    res.notes.append("Load average (1/5/15 min) is recorded because other processes share the CPU; all ratios are "
                     "between variants stepped round-robin in the same run, so load affects both sides alike.")
    res.notes.append("Speed modes (off by default): bf16 autocast, torch.compile of the layer step (its first epoch "
                     "per layer, which compiles, is dropped like every first epoch), and on CUDA tf32; tf32 changes "
                     "CUDA matmuls only.")
    if quick:  # the targets are stated for 60000 x 784 and 2x500; tiny shapes cannot meet or miss them
        res.checks = [(t, m, "smoke") for t, m, _ in res.checks]
        meta["quick"] = "smoke run on small shapes: the verdicts do not apply"
    for t, m, v in res.checks:
        print(f"{v:8s} {t}: {m}")
    out = Path(args.out) if args.out else (None if quick else HERE)
    if out is not None:
        write_results(out, res, meta)
        print(f"wrote {out / 'RESULTS.md'} and {out / 'results.csv'}")
    return res


if __name__ == "__main__":
    main()
