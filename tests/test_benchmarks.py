"""Smoke test of the benchmark script: the quick mode runs end to end and writes its tables.

No timing is asserted (speed goals live in benchmarks/RESULTS.md, not in unit tests).
"""

from __future__ import annotations

import csv

from benchmarks.run import main


def test_quick_benchmark_writes_markdown_and_csv(tmp_path):
    missing = tmp_path / "no-datasets-here"
    res = main(["--quick", "--devices", "cpu", "--data-dir", str(missing), "--out", str(tmp_path), "--no-memory",
                "--epochs", "2", "--predict-reps", "1", "--bp-batches", "2", "--threads", "1"])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "RANDOM data" in text  # the fallback is labelled, never passed off as the real dataset
    assert "torch" in text and "load_average_start" in text
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.reader(f))
    header = rows[1]
    body = [dict(zip(header, r)) for r in rows[2:]]
    measures = {(r["measure"], r["algo"], r["path"]) for r in body}
    for algo in ("ff", "fgff"):
        for path in ("plain", "factorised"):
            assert ("train epoch", algo, path) in measures
            assert ("predict test set", algo, path) in measures
    assert ("matmul limit", "torch.mm", "-") in measures
    assert any(r["algo"] == "bp" and r["measure"] == "train epoch" for r in body)
    assert all(float(r["seconds"]) > 0 for r in body if r["seconds"])
    # the same-results check compares real runs of both paths
    same = [c for c in res.checks if "same results" in c[0]]
    assert len(same) == 2 and all("max |loss diff|" in c[1] for c in same)
    modes = [c[0] for c in res.checks if "speed mode" in c[0]]
    assert any("bf16" in m for m in modes) and any("compile" in m for m in modes)


def test_the_estimate_benchmark_prints_its_tables(capsys):
    """benchmarks/estimate.py without --train times nothing: the logged runs against the estimate."""
    from benchmarks import estimate as bench

    bench.main([])
    out = capsys.readouterr().out
    assert "| quick-digits (the default preset) |" in out
    assert "Replay of" in out and "inside the shown range" in out
    assert "| ff-best-mnist-quick |" in out  # the class-server case, old and new estimate side by side
