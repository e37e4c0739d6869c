#!/usr/bin/env bash
# Gas-phase CH4 PIMD (8 beads, 300 K): i-PI + reann-driver; the model defaults to the shipped one.
#   bash examples/ch4_pimd/run.sh [--model M.pt] [--steps N] [--beads P] [--batch-size B] [--device cuda]
# Needs the `reann` command: `source .venv/bin/activate` after `bash scripts/demo.sh`, or pip install -e .
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$here/model.pt"
if [[ "${1:-}" == "--model" ]]; then
    model="$2"
    shift 2
fi
if ! command -v reann >/dev/null; then
    echo "run.sh: the reann command is not on PATH; run 'source .venv/bin/activate' (made by scripts/demo.sh)" >&2
    exit 1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec reann pimd "$here" --model "$model" --non-periodic "$@"
