#!/usr/bin/env bash
# Everything only a GPU can show, in one device call (10 minutes at most per call):
#
#     bash benchmarks/gpu_session.sh                    # writes under $OUT (default ./gpu-out)
#     ONLY="bench soak" bash benchmarks/gpu_session.sh  # just these steps (a second call)
#
# Steps, cheapest and most important first, each under `timeout` (cap in seconds; time an
# earlier step leaves unused rolls over to the later ones, and the whole run stops by about
# 520 s, under the 540 s it is allowed: 510 s of caps, then at most 10 s for the
# last step to die after its SIGINT):
#   machine      (30)  machine.txt: date -u, nvidia-smi, cupy.show_config(), the gradflow
#                      machine description, torch/CuPy versions
#   tests       (180)  tests.txt: the whole pytest suite (the gpu-marked cuda variants run)
#   determinism  (45)  determinism.md (+ determinism.txt): benchmarks/determinism_check.py,
#                      kernels/README.md's determinism table checked bit for bit
#   tune         (40)  tune.txt, dispatch_table.json, <date>-dispatch-<arch>.md:
#                      gradflow.bench.tune --write on a copy of the dispatch table
#   pytest-bench (70)  pytest-bench.json + pytest-bench.txt: pytest benchmarks -m gpu
#   bench        (70)  bench.json + bench.txt: gradflow bench, all suites, every size, vs torch
#   soak         (75)  soak.txt (+ soak.json): benchmarks/soak_memory.py on cuda
# steps.txt gets one line per step: name, exit status (124: timed out; "skipped": no time
# left), seconds, the limit it ran under and its log file. A failing step never stops the
# others; the exit status is 0 only when every step ran and exited 0. A step that runs out
# of time gets SIGINT (pytest then still prints its summary), SIGKILL 10 s later.
# Knobs (environment): OUT; ONLY (step names); PYTHON (default python); CAP_MACHINE,
# CAP_TESTS, CAP_DETERMINISM, CAP_TUNE, CAP_PYTEST_BENCH, CAP_BENCH, CAP_SOAK (the caps
# above; keep their sum under 530); SOAK_STEPS (default 10000); BENCH_MAX_TIME
# (pytest-benchmark's --benchmark-max-time per benchmark, default 0.25 s).
#
# Turning the outputs into committed files (GPU = a short name from machine.txt's nvidia-smi,
# e.g. h100; DATE = its `date -u` day; cite the GPU name, driver, CUDA runtime and CuPy
# versions from machine.txt and the exact command from the step's log in every record):
#   - bench.json -> benchmarks/results/DATE-GPU-bench.json, and a "GPU, DATE" section in
#     benchmarks/RESULTS.md with bench.txt's table, the command and the machine line;
#   - pytest-bench.json -> benchmarks/results/DATE-GPU-pytest-bench.json;
#   - determinism.md -> benchmarks/results/DATE-GPU-determinism.md; then update the status
#     note and tables of kernels/README.md from its verdicts;
#   - DATE-dispatch-ARCH.md -> benchmarks/results/ under the same name (the table entry
#     already points there), and dispatch_table.json -> gradflow/kernels/dispatch_table.json
#     after reading the diff;
#   - soak.txt -> benchmarks/results/DATE-GPU-memory-soak.md (command + machine on top);
#   - tests.txt: its summary line goes into the GPU section of RESULTS.md; each failure
#     is a bug to fix, not a result to commit.
set -u

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2  # the repository root
OUT="${OUT:-./gpu-out}"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
export OUT
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
ONLY="${ONLY:-}"
SOAK_STEPS="${SOAK_STEPS:-10000}"
BENCH_MAX_TIME="${BENCH_MAX_TIME:-0.25}"

START_MS=$(date +%s%3N)
FAILED=0  # 1 once a step fails or is skipped: the script's exit status
DEADLINE_S=0  # the sum of the caps so far: a step must end by this many seconds into the run
STEPS_FILE="$OUT/steps.txt"
printf '%-13s %-8s %9s %8s  %s\n' "# step" exit seconds limit_s log >"$STEPS_FILE"

elapsed_ms() { echo $(($(date +%s%3N) - START_MS)); }
tenths() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }  # milliseconds -> "12.3"
stamp() { printf '[%6s s]' "$(tenths "$(elapsed_ms)")"; }

# run_step NAME CAP LOG COMMAND [ARG...]: run COMMAND with stdout and stderr in $OUT/LOG,
# under timeout, and record its exit status and duration.
run_step() {
    local name=$1 cap=$2 log=$3
    shift 3
    DEADLINE_S=$((DEADLINE_S + cap))
    if [[ -n "$ONLY" && " $ONLY " != *" $name "* ]]; then
        return 0
    fi
    local limit=$((DEADLINE_S - $(elapsed_ms) / 1000))
    if ((limit < 5)); then
        printf '%-13s %-8s %9s %8s  %s\n' "$name" skipped - "$limit" "$log" >>"$STEPS_FILE"
        printf '%s %-13s skipped: no time left\n' "$(stamp)" "$name"
        FAILED=1
        return 0
    fi
    printf '%s %-13s started (limit %d s) -> %s\n' "$(stamp)" "$name" "$limit" "$log"
    local t0 rc
    t0=$(elapsed_ms)
    {
        echo "\$ $*"
        echo "# started $(date -u '+%Y-%m-%dT%H:%M:%SZ'), limit ${limit} s"
    } >"$OUT/$log"
    timeout -s INT -k 10 "$limit" "$@" >>"$OUT/$log" 2>&1
    rc=$?
    local ms=$(($(elapsed_ms) - t0))
    local seconds
    seconds=$(tenths "$ms")
    printf '%-13s %-8s %9s %8s  %s\n' "$name" "$rc" "$seconds" "$limit" "$log" >>"$STEPS_FILE"
    local note=""
    ((rc == 124 || rc == 137)) && note=" (timed out)"
    ((rc != 0)) && FAILED=1
    printf '%s %-13s exit %s%s after %s s: %s\n' "$(stamp)" "$name" "$rc" "$note" "$seconds" \
        "$(tail -n 1 "$OUT/$log" | cut -c1-100)"
}

machine_info() {
    echo "## date -u"
    date -u
    echo "## git (absent on a copied tree)"
    git rev-parse HEAD 2>/dev/null && git status --short 2>/dev/null
    echo "## nvidia-smi"
    nvidia-smi
    echo "## nvidia-smi -q (clocks, power, ECC)"
    nvidia-smi -q -d CLOCK,POWER,ECC,PERFORMANCE 2>&1 | head -n 120
    echo "## nvcc --version"
    nvcc --version 2>&1 || echo "(no nvcc on PATH)"
    echo "## cupy.show_config()"
    "$PY" -c "import cupy; cupy.show_config()"
    echo "## gradflow.bench.machine"
    "$PY" -c "
import json
from gradflow.bench.machine import describe_machine_line, machine_description
print(describe_machine_line())
print(json.dumps(machine_description(), indent=1))"
    echo "## torch"
    "$PY" -c "import torch; print(torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available())"
    echo "## packages"
    "$PY" -m pip list 2>/dev/null | grep -iE '^(cupy|torch|numpy|pytest|nvidia-)' || true
    echo "## CPU"
    nproc
    grep -m1 'model name' /proc/cpuinfo
    free -g
}

tune() {
    cp gradflow/kernels/dispatch_table.json "$OUT/dispatch_table.json" || return 2
    "$PY" -m gradflow.bench.tune --write --table "$OUT/dispatch_table.json" --record-dir "$OUT"
}

export -f machine_info tune
export PY

echo "gpu_session: writing under $OUT (steps.txt has each step's exit status)"
run_step machine "${CAP_MACHINE:-30}" machine.txt bash -c machine_info
run_step tests "${CAP_TESTS:-180}" tests.txt "$PY" -m pytest -q -ra --durations=25 -p no:cacheprovider
run_step determinism "${CAP_DETERMINISM:-45}" determinism.txt \
    "$PY" benchmarks/determinism_check.py --device cuda --out "$OUT/determinism.md"
run_step tune "${CAP_TUNE:-40}" tune.txt bash -c tune
run_step pytest-bench "${CAP_PYTEST_BENCH:-70}" pytest-bench.txt \
    "$PY" -m pytest benchmarks -m gpu -q -p no:cacheprovider \
    --benchmark-json "$OUT/pytest-bench.json" --benchmark-max-time "$BENCH_MAX_TIME"
run_step bench "${CAP_BENCH:-70}" bench.txt \
    "$PY" -m gradflow.cli bench --device cuda --suite all --sizes small,medium,large \
    --compare torch --json "$OUT/bench.json" --no-progress
run_step soak "${CAP_SOAK:-75}" soak.txt \
    "$PY" benchmarks/soak_memory.py --model mlp --steps "$SOAK_STEPS" --device cuda \
    --json "$OUT/soak.json"

echo
echo "gpu_session: done in $(($(elapsed_ms) / 1000)) s"
cat "$STEPS_FILE"
if [[ -f "$OUT/determinism.md" ]]; then
    echo
    grep -E '^\| |cases in' "$OUT/determinism.md"
fi
for log in tests.txt pytest-bench.txt; do
    [[ -f "$OUT/$log" ]] && echo "$log: $(grep -E '(passed|failed|error)' "$OUT/$log" | tail -n 1)"
done
ls -l "$OUT"
exit "$FAILED"
