#!/bin/sh
# Regenerate docs/screenshot.png and docs/popup.png: the end-to-end page scan (Debian's chromium,
# the real server with the bundled default model, or GAMMA_E2E_MODEL) saves both views.
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
GAMMA_E2E_ARTIFACTS="$out" python3 -m pytest -q tests/test_extension_e2e.py -k page_scan
cp "$out/page-scan.png" extension/docs/screenshot.png
cp "$out/popup.png" extension/docs/popup.png
rm -r "$out"
