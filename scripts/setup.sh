#!/usr/bin/env bash
# Fresh-machine setup: a virtualenv in .venv with lavida and everything its tests need.
# torch/torchvision are pinned (they install from the build machines' disk); sam2 ships as source
# and must be built after torch without build isolation, or its build pulls a second torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip setuptools wheel
$PIP install -q torch==2.14.1 torchvision==0.29.1
$PIP install -q -e ".[test]"
.venv/bin/python -c "import sam2" 2>/dev/null || SAM2_BUILD_CUDA=0 $PIP install -q --no-build-isolation sam2==1.1.0
# The report test renders the HTML page in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the report screenshot test will fail" >&2
  else
    echo "setup: chromium is not installed (apt-get install chromium); the report screenshot test needs it" >&2
  fi
fi
