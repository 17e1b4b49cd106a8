#!/usr/bin/env bash
# Set up a fresh machine, check the architecture and style, and run the test suite (CPU only; no
# network but package registries). Arguments go to pytest: `bash scripts/test.sh -m "not slow"` is the
# fast tier (no Ray, S3 server, Chromium or subprocess, no test over ~2 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lint-imports --no-cache
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
