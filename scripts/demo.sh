#!/usr/bin/env bash
# Main job, from a fresh checkout: create .venv, install reann-driver (CPU torch), then run the CH4
# path-integral MD example (i-PI + reann-driver, 8 beads, 300 K) with the model shipped in the repo.
# Prints the speed (steps/s) and the centroid-virial quantum kinetic energy at the end.
#   bash scripts/demo.sh                 # the whole example (examples/ch4_pimd/input.xml)
#   bash scripts/demo.sh --steps 500     # extra options go to `reann pimd`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODEL=examples/ch4_pimd/model.pt
if [[ ! -f "$MODEL" ]]; then
    echo "demo: the model $MODEL is missing; see examples/ch4_pimd/README.md to train one" >&2
    exit 1
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "demo: creating the virtual environment .venv"
    "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "demo: installing torch 2.13.0 (CPU) and reann-driver into .venv"
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e .

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/reann pimd examples/ch4_pimd --model "$MODEL" --non-periodic "$@"
cat <<'NEXT'

demo: done. The commands reann, reann-data and reann-driver are installed in .venv; to use them here:
    source .venv/bin/activate
then e.g. `reann pimd examples/ch4_pimd --model examples/ch4_pimd/model.pt --non-periodic --beads 16`
(README.md, section "Command line", lists the rest).
NEXT
