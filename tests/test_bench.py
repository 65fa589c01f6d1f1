"""`gamma bench`: the protocol (baseline, ratios, percentiles, machine) on the tiny model, kept short."""

from __future__ import annotations

import pytest
from export_support import tiny_export, write_images

from gamma_detect.export.bench import BASELINE, cpu_peak_gflops, format_result, machine_info, run_bench, time_backend


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory)


def test_machine_and_peak_estimate():
    info = machine_info(2)
    assert info["cpu"] and info["threads"] == 2
    peak, how = cpu_peak_gflops(2)
    if peak is not None:
        assert peak > 1 and "FLOP/cycle" in how


def test_time_backend_takes_the_median_and_percentiles():
    import numpy as np

    calls = []
    row = time_backend(lambda x: calls.append(len(x)), np.zeros((8, 4, 4, 3), np.uint8), 4, repeats=3, warmup=2)
    assert calls == [4] * 5 and row.runs == 3 and row.images_per_s > 0 and row.p50_ms <= row.p99_ms


def test_bench_reports_every_backend_against_the_eager_baseline(tiny_dir, tmp_path, capsys):
    images = write_images(tmp_path / "images", sizes=((200, 300), (260, 260)))
    result = run_bench(tiny_dir, batches=(1, 2), repeats=2, threads=2, images=images[0].parent,
                       log=lambda _: None)
    labels = {(r.backend, r.batch) for r in result.rows}
    assert {(BASELINE, 1), (BASELINE, 2), ("onnxruntime-cpu-fp32", 1), ("onnxruntime-cpu-fp32", 2)} <= labels
    for row in result.rows:
        assert row.ratio is not None and row.images_per_s > 0
        if row.backend == BASELINE:
            assert row.ratio == pytest.approx(1.0)
        # Every speed stands beside its accuracy against the FP32 ONNX graph on the same views.
        assert row.mean_abs_dp is not None and row.mean_abs_dp <= row.max_abs_dp
        if row.backend in (BASELINE, "onnxruntime-cpu-fp32"):
            assert row.max_abs_dp < 1e-4
    assert "onnxruntime-cuda" in result.skipped or any("cuda" in r.backend for r in result.rows)
    text = format_result(result)
    assert "FLOPs per image" in text and "x eager" in text and "mean|dp|" in text and result.machine["cpu"] in text
    assert "onnxruntime" in text and "torch" in result.libraries


def test_bench_cli(tiny_dir, tmp_path, capsys):
    from gamma_detect.cli import main

    images = write_images(tmp_path / "images", sizes=((200, 300),))
    code = main(["bench", "--model", str(tiny_dir), "--batches", "1", "--repeats", "1", "--images",
                 str(images[0].parent), "--backends", "onnxruntime-cpu", "--json", str(tmp_path / "bench.json")])
    out = capsys.readouterr().out
    assert code == 0 and "onnxruntime-cpu-fp32" in out and (tmp_path / "bench.json").is_file()
