"""TensorRT: engine building (TensorRT 10 and 11), Torch-TensorRT, and the engine runtime.

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
checked before an engine is loaded.

The runtime (:class:`TensorRTSession`) uses ``execute_async_v3`` with tensor
addresses set by name, device buffers from cuda-python (``cuda.bindings``), and
no torch.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("gamma.export.tensorrt")

PROFILE = {"min": 1, "opt": 8, "max": 32}
UNTESTED = "TensorRT code paths are untested here: no machine available to this project has TensorRT"


class TensorRTUnavailable(RuntimeError):
    pass


# --------------------------------------------------------------------------- environment
def tensorrt_available() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def tensorrt_version() -> str | None:
    if not tensorrt_available():
        return None
    import tensorrt as trt

    return trt.__version__


def _cudart():
    """cuda-python's runtime module (``cuda.bindings.runtime`` from 12.6, ``cuda.cudart`` before)."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,no-redef]
        except ImportError as exc:
            raise TensorRTUnavailable("the TensorRT backend needs cuda-python (`pip install cuda-python`)") from exc
    return cudart


def _check(result):
    """cuda-python calls return (error, *values)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA runtime error {err}")
    return values[0] if len(values) == 1 else values


def gpu_identity(device: int = 0) -> dict | None:
    """{"name", "compute_capability"} of a CUDA device, or None when there is none (torch-free)."""
    try:
        cudart = _cudart()
        count = _check(cudart.cudaGetDeviceCount())
        if count <= device:
            return None
        props = _check(cudart.cudaGetDeviceProperties(device))
    except Exception:  # noqa: BLE001 - no driver, no device, no cuda-python: no GPU to match
        return None
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return {"name": name.rstrip("\x00").strip(), "compute_capability": f"{props.major}.{props.minor}"}


# --------------------------------------------------------------------------- build
def _logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


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
    logger = _logger()
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


# --------------------------------------------------------------------------- runtime
class TensorRTSession:
    """Runs a serialized engine: set_input_shape, set_tensor_address per I/O tensor, execute_async_v3."""

    def __init__(self, engine_path: str | Path, max_batch: int = PROFILE["max"]):
        if not tensorrt_available():
            raise TensorRTUnavailable("TensorRT is not installed")
        import tensorrt as trt

        self.trt = trt
        self.cudart = _cudart()
        self.runtime = trt.Runtime(_logger())
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {engine_path} (built for another GPU or version?)")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in self.names if n not in self.inputs]
        self.max_batch = max_batch
        self.stream = _check(self.cudart.cudaStreamCreate())
        self.buffers: dict[str, int] = {}
        self.capacity: dict[str, int] = {}

    def _buffer(self, name: str, nbytes: int) -> int:
        if self.capacity.get(name, 0) < nbytes:
            if name in self.buffers:
                _check(self.cudart.cudaFree(self.buffers[name]))
            self.buffers[name] = int(_check(self.cudart.cudaMalloc(nbytes)))
            self.capacity[name] = nbytes
        return self.buffers[name]

    def run(self, views: np.ndarray) -> tuple[np.ndarray, ...]:
        trt, cudart = self.trt, self.cudart
        views = np.ascontiguousarray(views)
        name = self.inputs[0]
        self.context.set_input_shape(name, tuple(views.shape))
        address = self._buffer(name, views.nbytes)
        _check(cudart.cudaMemcpyAsync(address, views.ctypes.data, views.nbytes,
                                      cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
        self.context.set_tensor_address(name, address)
        host = {}
        for out in self.outputs:
            shape = tuple(self.context.get_tensor_shape(out))
            array = np.empty(shape, dtype=trt.nptype(self.engine.get_tensor_dtype(out)))
            host[out] = array
            self.context.set_tensor_address(out, self._buffer(out, array.nbytes))
        if not self.context.execute_async_v3(stream_handle=int(self.stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        for out, array in host.items():
            _check(cudart.cudaMemcpyAsync(array.ctypes.data, self.buffers[out], array.nbytes,
                                          cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return tuple(host[o].astype(np.float32, copy=False) for o in ("probability", "mask", "sources"))

    def __del__(self):  # pragma: no cover - needs a GPU
        for address in getattr(self, "buffers", {}).values():
            try:
                self.cudart.cudaFree(address)
            except Exception:  # noqa: BLE001
                pass


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

