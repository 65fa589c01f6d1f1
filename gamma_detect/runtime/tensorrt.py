"""TensorRT serving: the engine session and the checks an engine needs before it loads (no torch).

UNTESTED: no machine this project runs on has TensorRT. The code follows the
documented TensorRT 10/11 Python API and is kept thin; its tests skip with that reason.

:class:`TensorRTSession` uses ``execute_async_v3`` with tensor addresses set by
name and device buffers from cuda-python (``cuda.bindings``). Engines are built on
the build side (``gamma_detect.export.tensorrt``); an engine only runs on the GPU
model and TensorRT version that built it, both recorded in the manifest.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..contract import MAX_BATCH_VIEWS

PROFILE = {"min": 1, "opt": 8, "max": MAX_BATCH_VIEWS}
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


def trt_logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


class TensorRTSession:
    """Runs a serialized engine: set_input_shape, set_tensor_address per I/O tensor, execute_async_v3."""

    def __init__(self, engine_path: str | Path, max_batch: int = PROFILE["max"]):
        if not tensorrt_available():
            raise TensorRTUnavailable("TensorRT is not installed")
        import tensorrt as trt

        self.trt = trt
        self.cudart = _cudart()
        self.runtime = trt.Runtime(trt_logger())
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
