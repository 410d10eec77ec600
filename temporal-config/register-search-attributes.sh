#!/usr/bin/env bash
# Registers Labline's custom search attributes (temporal-config/search-attributes.json) on a real Temporal
# with the Temporal CLI. The embedded dev server registers them by itself.
#
# Usage: temporal-config/register-search-attributes.sh [--namespace NAME] [any other `temporal` flags,
#        e.g. --address host:7233 or --env cloud]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v temporal >/dev/null 2>&1; then
  echo "The Temporal CLI (temporal) is not on PATH; install it from Temporal's documentation first." >&2
  exit 2
fi
node -e '
  const { searchAttributes } = require(process.argv[1]);
  for (const [name, type] of Object.entries(searchAttributes)) console.log(name + " " + type);
' "$here/search-attributes.json" | while read -r name type; do
  if temporal operator search-attribute create --name "$name" --type "$type" "$@"; then
    echo "registered $name ($type)"
  else
    echo "could not register $name ($type); it may exist already" >&2
  fi
done
