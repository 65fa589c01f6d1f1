# syntax=docker/dockerfile:1
# gamma-detect service images. Two targets:
#   docker build --target cpu -t gamma-detect:cpu .   slim Python, ONNX Runtime (CPU), no torch
#   docker build --target gpu -t gamma-detect:gpu .   NVIDIA's TensorRT image, TensorRT + ONNX Runtime (CUDA)
# Both run `gamma serve` by default; compose.yaml runs the same image as API and as `gamma worker`.

ARG PYTHON_IMAGE=python:3.11-slim
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:24.08-py3
# The CUDA build of ONNX Runtime for the GPU image; keep it at the CPU build's version that pip resolves.
ARG ONNXRUNTIME_GPU_VERSION=1.32.0

# ---------------------------------------------------------------- shared source
FROM ${PYTHON_IMAGE} AS source
WORKDIR /src
# Every folder pyproject.toml's package-dir maps (the wheel cannot build without them; tests/test_docker.py
# builds it from exactly these files). train/ and export/ install as code only: nothing in the service imports
# them (or torch), import-linter checks that.
COPY pyproject.toml README.md ./
COPY gamma_detect gamma_detect
COPY export export
COPY server server
COPY train train
COPY models models
COPY data data

# ---------------------------------------------------------------- CPU
FROM ${PYTHON_IMAGE} AS cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GAMMA_DATA_DIR=/data
COPY --from=source /src /src
RUN pip install /src && rm -rf /src \
 && python -c "import gamma_detect.server.app, onnxruntime; import importlib.util as u; assert u.find_spec('torch') is None" \
 && useradd --system --uid 10001 --home-dir /data gamma && mkdir -p /data && chown gamma /data
USER 10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gamma", "serve", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------- GPU
FROM ${TENSORRT_IMAGE} AS gpu
ARG ONNXRUNTIME_GPU_VERSION
# One worker process feeds the GPU (the CPU image's default is one per core).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GAMMA_DATA_DIR=/data GAMMA_BACKEND=auto GAMMA_WORKERS=1
COPY --from=source /src /src
# The base image brings CUDA, cuDNN and TensorRT (with its Python bindings); swap the CPU ONNX Runtime for the CUDA one.
RUN python3 -m pip install /src && python3 -m pip uninstall -y onnxruntime \
 && python3 -m pip install "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}" && rm -rf /src \
 && python3 -c "import tensorrt, onnxruntime, gamma_detect.server.app" \
 && useradd --system --uid 10001 --home-dir /data gamma && mkdir -p /data && chown gamma /data
USER 10001
WORKDIR /data
EXPOSE 8000
CMD ["gamma", "worker"]
