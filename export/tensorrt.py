"""TensorRT on the build side: engine building (TensorRT 10 and 11) and Torch-TensorRT.

UNTESTED: no machine this project runs on has TensorRT. The code follows the
documented APIs (TensorRT 10/11 Python API and migration guide, Torch-TensorRT
dynamo AOT docs) and is kept thin; its tests skip with that reason.

Two build paths, chosen by the installed TensorRT major version:

- TensorRT 10: the FP32 ONNX, parsed into a (weakly typed) network, built with
  ``BuilderFlag.FP16`` so TensorRT may pick FP16 kernels.
- TensorRT 11: precision builder flags are gone and every network is strongly
  typed, so the precision must be in the graph: the FP16 ONNX (weights and
  compute in FP16, uint8 input and float32 outputs) is parsed into a strongly
  typed network and built as is.

Both use one optimization profile over the dynamic batch (min 1, opt 8, max 32)
and a timing cache file that later builds reuse. An engine only runs on the GPU
model and TensorRT version that built it: both are recorded in the manifest and
checked before an engine is loaded. Serving an engine is the runtime's job
(``gamma_detect.runtime.tensorrt``); the Torch-TensorRT session, which needs torch,
lives here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.tensorrt import PROFILE, UNTESTED, TensorRTUnavailable, gpu_identity, tensorrt_available, trt_logger


def build_engine(onnx_path: str | Path, engine_path: str | Path, timing_cache: str | Path, input_size: int,
                 input_name: str = "images", profile: dict = PROFILE, workspace_gib: float = 4.0) -> dict:
    """Build a serialized FP16 engine from ONNX; returns what the manifest records about it.

    TensorRT 10: pass the FP32 ONNX (the FP16 builder flag is set here).
    TensorRT 11: pass the FP16 ONNX (strongly typed network, no precision flags).
    """
    if not tensorrt_available():
        raise TensorRTUnavailable("TensorRT is not installed (`pip install tensorrt`); " + UNTESTED)
    import tensorrt as trt

    major = int(trt.__version__.split(".")[0])
    logger = trt_logger()
    builder = trt.Builder(logger)
    if major >= 11:
        # Strong typing is the only mode in 11.x; the flag, where it still exists, is accepted and ignored.
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        network = builder.create_network(1 << int(strongly) if strongly is not None else 0)
    else:
        network = builder.create_network(0)  # explicit batch is the only mode since 10.0
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if major < 11:
        config.set_flag(trt.BuilderFlag.FP16)
    s = input_size
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(input_name, (profile["min"], s, s, 3), (profile["opt"], s, s, 3), (profile["max"], s, s, 3))
    config.add_optimization_profile(opt_profile)
    timing_cache = Path(timing_cache)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"tensorrt": {"version": trt.__version__, "network": "strongly typed (FP16 ONNX)" if major >= 11
                         else "weakly typed, BuilderFlag.FP16 (FP32 ONNX)", "source_onnx": Path(onnx_path).name},
            "gpu": gpu_identity(), "profile": {"input": input_name, **profile},
            "timing_cache": timing_cache.name}


def compile_torch_tensorrt(graph, path: str | Path, input_size: int, timing_cache: str | Path,
                           profile: dict = PROFILE) -> dict:
    """Torch-TensorRT AOT (``ir="dynamo"``) of the FP16 deployable graph, saved as an ExportedProgram.

    ``graph`` is a DeployableGamma built with ``dtype=torch.float16`` (explicit typing: the precision is
    the module's own, as TensorRT 11 requires).
    """
    import torch
    import torch_tensorrt  # type: ignore[import-not-found]

    s = input_size
    graph = graph.cuda().eval()
    inputs = [torch_tensorrt.Input(min_shape=(profile["min"], s, s, 3), opt_shape=(profile["opt"], s, s, 3),
                                   max_shape=(profile["max"], s, s, 3), dtype=torch.uint8)]
    settings = {"ir": "dynamo", "inputs": inputs, "min_block_size": 1, "timing_cache_path": str(timing_cache)}
    try:
        trt_module = torch_tensorrt.compile(graph, use_explicit_typing=True, **settings)
    except TypeError:  # releases before use_explicit_typing: ask for FP16 kernels instead
        trt_module = torch_tensorrt.compile(graph, enabled_precisions={torch.float16}, **settings)
    torch_tensorrt.save(trt_module, str(path), output_format="exported_program", arg_inputs=inputs)
    import tensorrt as trt

    return {"tensorrt": {"version": trt.__version__, "torch_tensorrt": torch_tensorrt.__version__},
            "gpu": gpu_identity(), "profile": {"input": "images", **profile}}


class TorchTensorRTSession:
    """Runs a Torch-TensorRT ExportedProgram (torch imported here, only when chosen)."""

    def __init__(self, path: str | Path, max_batch: int = PROFILE["max"]):
        import torch
        import torch_tensorrt  # noqa: F401  # type: ignore[import-not-found]  (registers the TensorRT runtime ops)

        self.torch = torch
        self.module = torch.export.load(str(path)).module()
        self.max_batch = max_batch

    def run(self, views: np.ndarray) -> tuple[np.ndarray, ...]:
        torch = self.torch
        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(views)).cuda())
        return tuple(t.float().cpu().numpy() for t in out)

