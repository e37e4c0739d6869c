#!/usr/bin/env bash
# 64-water PIMD (32 beads, 300 K): i-PI + reann-driver with a periodic O/H model.
#   bash examples/water64_pimd/run.sh MODEL.pt [--device cuda] [--steps N] [--beads P] [--batch-size B]
# Needs the `reann` command: `source .venv/bin/activate` after `bash scripts/demo.sh`, or pip install -e .
set -euo pipefail
if [[ $# -lt 1 || ! -f "$1" ]]; then
    echo "usage: bash examples/water64_pimd/run.sh MODEL.pt [options of reann pimd]" >&2
    exit 1
fi
if ! command -v reann >/dev/null; then
    echo "run.sh: the reann command is not on PATH; run 'source .venv/bin/activate' (made by scripts/demo.sh)" >&2
    exit 1
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$1"
shift
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec reann pimd "$here" --model "$model" "$@"
