#!/usr/bin/env bash
# Makes .venv-python/ in this checkout: the Python the PyTorch example and the helper's tests run with. Pinned:
# torch 2.13.0 (a CPU build for Python 3.11 that needs no large download here), scikit-learn (the digits data
# set ships inside it), pytest, wandb, PyTorch Lightning, transformers with accelerate (the helper's callbacks)
# and the helper itself (python/, editable).
# Usage: scripts/python/setup.sh   (again: only installs what is missing)
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv-python
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "python setup: $python not found; install Python 3.9+ with venv" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/python/requirements.txt
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e ./python
"$venv/bin/python" -c 'import torch, sklearn, labline_trainer; print("python setup: torch", torch.__version__, "in", __import__("sys").prefix)'
