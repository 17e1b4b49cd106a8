#!/usr/bin/env bash
# Set up a fresh machine and run the demo: scan the bundled generated archive, print its events.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lavida demo "$@"
