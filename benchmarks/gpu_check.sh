#!/usr/bin/env bash
# Everything the course measures on a GPU, in one run of under 10 minutes on one H200 (issue 19):
#   1. the CUDA tests that skip on the CPU (pytest -k "cuda or gpu"),
#   2. the performance report's GPU rows (HD95 / ASSD at 128³ and 256³ on the GPU against the CPU
#      peers; U-Net and V-Net training steps on the GPU, with their throughput),
#   3. every chapter in the full profile: wall time, peak GPU memory, and the executed notebooks
#      (their printed numbers) rendered for reading.
# On a machine without CUDA it says so and skips 2 and 3 (1 then shows its tests skipping).
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#   bash benchmarks/gpu_check.sh --quick    # small sizes, quick profile: a short try
#
# Environment: PYTHON (default python3: it needs torch, the course's requirements and
# requirements-dev.txt), OUT (where logs, tables and rendered notebooks go; default
# build/gpu_check), and the time budgets in seconds TESTS_S, REPORT_S, CHAPTERS_S (default 90, 150,
# 300). A phase that runs out of its budget is stopped and reported; the others still run.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUICK=0
case "${1:-}" in
--quick) QUICK=1 ;;
"") ;;
*)
    echo "usage: bash benchmarks/gpu_check.sh [--quick]" >&2
    exit 2
    ;;
esac
PYTHON=${PYTHON:-python3}
OUT=${OUT:-build/gpu_check}
TESTS_S=${TESTS_S:-90}
REPORT_S=${REPORT_S:-150}
CHAPTERS_S=${CHAPTERS_S:-300}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

say() { printf '\n==> %s\n' "$*"; }

# run NAME SECONDS COMMAND...: the command's output to the screen and to $OUT/NAME.log, stopped
# after SECONDS; a failure or a timeout is reported and remembered, and the next phase runs.
run() {
    local name=$1 seconds=$2 start=$SECONDS rc
    shift 2
    timeout --signal=INT --kill-after=20 "$seconds" "$@" 2>&1 | tee "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    case $rc in
    0) say "$name: done in $((SECONDS - start)) s" ;;
    124) say "$name: STOPPED after its budget of $seconds s (see $OUT/$name.log)"; status=1 ;;
    *) say "$name: FAILED (exit $rc) after $((SECONDS - start)) s"; status=1 ;;
    esac
}

say "Machine"
"$PYTHON" - <<'EOF' | tee "$OUT/machine.txt"
import os, platform, torch
print(f"Python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPU cores")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"CUDA {torch.version.cuda}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
else:
    print("no CUDA device")
EOF
has_cuda=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))')

say "1. The CUDA tests (they skip without a GPU)"
run cuda_tests "$TESTS_S" "$PYTHON" -m pytest tests -k "cuda or gpu" -q -rs -p no:cacheprovider

if [ "$has_cuda" != 1 ]; then
    say "2. The report's GPU rows: SKIPPED (no CUDA device); the README keeps them as not yet measured"
    say "3. The chapters in the full profile: SKIPPED (no CUDA device)"
    exit $status
fi

quick=()
[ "$QUICK" = 1 ] && quick=(--quick)
say "2. The report's GPU rows (course_lib on the GPU; the peers on 2 CPU threads)"
run gpu_rows "$REPORT_S" "$PYTHON" benchmarks/report.py --gpu-rows --no-cpu --threads 2 \
    --repeats 3 "${quick[@]}"

profile=full
[ "$QUICK" = 1 ] && profile=quick
say "3. Every chapter in the $profile profile, two at a time (wall time, peak GPU memory)"
run chapters "$CHAPTERS_S" "$PYTHON" benchmarks/run_notebooks.py --profile "$profile" --jobs 2 \
    --threads 4 --render "$OUT/rendered"

say "Done: logs and tables in $OUT (status $status)"
exit $status
