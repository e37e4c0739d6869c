#!/usr/bin/env bash
# Regenerate the GFN2-xTB random-CH4 learning-curve data (README.md beside this file) into the folder OUT:
#   OUT/test/test.extxyz                 fixed test set, 1000 frames (its own generation seed)
#   OUT/split/train_N.extxyz             nested training sets, N = 100, 300, 1000, 3000, 10000
#   OUT/split/val.extxyz                 validation set, 500 frames
# Each step is skipped when its output exists; an interrupted generation resumes when the script is run
# again. The files are then checked against SHA256SUMS and with `reann-data validate`.
# Usage: bash datasets/ch4/learning-curve/make.sh OUT   (WORKERS=N for parallel labelling: same bytes)
set -euo pipefail
out=${1:?usage: make.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
workers=${WORKERS:-1}
export OMP_NUM_THREADS=1
mkdir -p "$out"
cd "$out"

generate() {  # generate SEED COUNT FILE
    [ -f "$3" ] || reann-data generate ch4 --mode random --labeler gfn2-xtb --seed "$1" --n "$2" \
        --workers "$workers" "$3"
}
generate 2028 1050 test-pool.extxyz    # 1050 > 1000: a few random frames fail the SCF and are skipped
generate 2027 11000 train-pool.extxyz  # >= 10500 labelled frames for 10000 train + 500 val
[ -d test ] || reann-data split test-pool.extxyz --seed 2030 --test 1000 --val 0 --train 0 --out test
[ -d split ] || reann-data split train-pool.extxyz --seed 2029 --test 0 --val 500 --train 10000 \
    --subsets 100,300,1000,3000,10000 --write-subsets --out split

sha256sum -c "$here/SHA256SUMS"
for file in test/test.extxyz split/val.extxyz split/train.extxyz; do
    reann-data validate --show 3 "$file"
done
