#!/usr/bin/env bash
# 64-water PIMD (32 beads, 300 K): i-PI + reann-driver with a periodic O/H model.
#   bash examples/water64_pimd/run.sh MODEL.pt [--device cuda] [--steps N] [--beads P] [--batch-size B]
set -euo pipefail
if [[ $# -lt 1 || ! -f "$1" ]]; then
    echo "usage: bash examples/water64_pimd/run.sh MODEL.pt [options of examples/run_pimd.py]" >&2
    exit 1
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$1"
shift
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec python "$here/../run_pimd.py" "$here" --model "$model" "$@"
