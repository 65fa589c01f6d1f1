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
    # End to end beside the graph: every serving backend that ran, on the image files themselves.
    pipeline = {p.backend: p for p in result.pipeline}
    assert "onnxruntime-cpu-fp32" in pipeline and not any(b.startswith("pytorch") for b in pipeline)
    row = pipeline["onnxruntime-cpu-fp32"]
    assert row.images == 2 and row.views_per_image >= 2 and row.views_per_s == pytest.approx(row.images_per_s
                                                                                             * row.views_per_image)
    assert row.graph_views_per_s is None   # batch 8 was not among the graph's batches
    assert "end to end" in text and "views/image" in text
    assert 0 < result.machine["process_cpu_share"] and "load average at end" in text


def test_time_pipeline_decodes_reduced_and_passes_native_sizes(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from gamma_detect.crops import CropPolicy
    from gamma_detect.export.bench import time_pipeline

    class Counting:
        policy = CropPolicy()

        def __init__(self):
            self.calls = []

        def predict(self, images, native=None):
            self.calls.append(([i.shape[:2] for i in images], native))
            return [type("P", (), {"views": 3})() for _ in images]

    files = []
    for size in ((2000, 1500), (300, 200), (260, 260)):
        buffer = io.BytesIO()
        Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(buffer, "JPEG")
        files.append(buffer.getvalue())
    detector = Counting()
    seconds, views = time_pipeline(detector, files, batch=2, repeats=2, threads=2)
    assert seconds > 0 and views == 3
    assert len(detector.calls) == 3 * 2   # a warm-up run and 2 timed ones, 2 batches each
    assert detector.calls[0] == ([(750, 1000), (200, 300)], [(1500, 2000), (200, 300)])
    full = Counting()
    time_pipeline(full, files, batch=2, repeats=1, threads=2, reduced=False)  # the worker before the reduced decode
    assert full.calls[0] == ([(1500, 2000), (200, 300)], [(1500, 2000), (200, 300)])


def test_a_backend_that_fails_end_to_end_is_reported_skipped(tiny_dir, tmp_path, monkeypatch):
    import gamma_detect.runtime.detector as runtime

    def broken(*args, **kwargs):
        raise RuntimeError("no session")

    monkeypatch.setattr(runtime, "load_detector", broken)
    images = write_images(tmp_path / "images", sizes=((200, 300),))
    result = run_bench(tiny_dir, batches=(1,), repeats=1, threads=2, images=images[0].parent,
                       backends=["onnxruntime-cpu-fp32"], log=lambda _: None)
    assert not result.pipeline and "no session" in result.skipped["onnxruntime-cpu-fp32 end to end"]


def test_bench_cli(tiny_dir, tmp_path, capsys):
    from gamma_detect.cli import main

    images = write_images(tmp_path / "images", sizes=((200, 300),))
    code = main(["bench", "--model", str(tiny_dir), "--batches", "1", "--repeats", "1", "--images",
                 str(images[0].parent), "--backends", "onnxruntime-cpu", "--json", str(tmp_path / "bench.json")])
    out = capsys.readouterr().out
    assert code == 0 and "onnxruntime-cpu-fp32" in out and (tmp_path / "bench.json").is_file()
