#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (CPU only; no network but package registries).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
