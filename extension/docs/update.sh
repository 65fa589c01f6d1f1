#!/bin/sh
# Regenerate docs/screenshot.png and docs/popup.png: the end-to-end page scan (Debian's chromium,
# the real server with the bundled default model, or GAMMA_E2E_MODEL) saves both views; and
# docs/edited-region.png: an edited photo checked on device (edited_region.py; needs `npm run build`).
set -eu
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
GAMMA_E2E_ARTIFACTS="$out" python3 -m pytest -q tests/test_extension_e2e.py -k page_scan
cp "$out/page-scan.png" extension/docs/screenshot.png
cp "$out/popup.png" extension/docs/popup.png
rm -r "$out"
python3 extension/docs/edited_region.py
