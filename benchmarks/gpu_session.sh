#!/usr/bin/env bash
# Everything only a GPU can show, in one device call of about 300 s (a lent GPU machine has
# 15 minutes of device time in all, its start included, and one call runs at most ~300 s):
#
#     bash benchmarks/gpu_session.sh                    # writes under $OUT (default ./gpu-out)
#     ONLY="determinism bench" bash benchmarks/gpu_session.sh   # just these steps (+ preflight)
#
# Steps, cheapest and most important first, each under `timeout` (cap in seconds; time an
# earlier step leaves unused rolls over to the later ones). The caps add up to 280 s, so the
# whole run stops by about 290 s: 280 s of caps, then at most 10 s for the last step to die
# after its SIGINT. Nothing CPU-only runs here (tests/kernels, the CPU emulation and the CPU
# variants of the tests belong to the CPU runs).
#   preflight    (20)  preflight.txt + machine.txt. Stops the whole script (exit 3, "ABORTED"
#                      in steps.txt and on stdout) unless GRADFLOW_CUDA_STANDIN is unset (it
#                      swaps CuPy for the CPU stand-in of CI: a run under it measures nothing),
#                      CuPy imports, sees a device and computes cupy.arange(10).sum() == 45 on
#                      it, gradflow.cuda.is_available() is True and gradflow's cuda arrays are
#                      that CuPy's. machine.txt: date -u, git commit, nvidia-smi (+ one CSV line
#                      of clocks, power, ECC), nvcc, CuPy/CUDA versions and cupy.show_config(),
#                      the gradflow machine description, torch and its CUDA, CPU. Always runs,
#                      whatever ONLY says.
#   cuda-tests  (125)  cuda-tests.txt + cuda-tests.xml (JUnit): only the cuda variants (-m gpu)
#                      of tests/ops, tests/nn, tests/optim, tests/autograd and tests/data, with
#                      GRADFLOW_GRADCHECK=directional (gradcheck checks directional derivatives
#                      only, no full Jacobians, once gradcheck honours it). Fails unless pytest
#                      exits 0 AND at least one test passed: "no tests ran", everything skipped,
#                      or any "no CUDA GPU visible" skip counts as a failure, not as green.
#                      tests/ops/test_attention.py's cuda variants run the attention row
#                      kernels (kernels/attention.cu) against torch.
#   nccl         (15)  nccl.txt: benchmarks/nccl_check.py, gradflow.distributed's NCCL backend in a
#                      world of one process: each collective on cuda tensors and an async
#                      handle (exit 5, "SKIPPED", without mpi4py or CuPy's NCCL).
#   determinism  (30)  determinism.md (+ determinism.txt): benchmarks/determinism_check.py,
#                      kernels/README.md's determinism table checked bit for bit
#   tune         (30)  tune.txt, dispatch_table.json, <date>-dispatch-<arch>.md:
#                      gradflow.bench.tune --write on a copy of the dispatch table. Last it
#                      times attention (sdpa forward + backward, float32) on the tiled kernels
#                      against the row kernels + cuBLAS, at most 10 calls a side, after checking
#                      that their gradients agree (the only GPU check of the tiled kernels
#                      here); a few seconds expected. Interrupted, it still writes the choices
#                      of the ops it finished (exit 130).
#   bench        (60)  bench.json + bench.txt: gradflow bench --device cuda --compare torch,
#                      suites elementwise, fused, matmul, conv, rnn and train (the GPU targets
#                      of docs/DESIGN.md §7) and attention (sdpa forward + backward, T=128 to
#                      1024) at the size "large" (2^24-element activations, LSTM at T=100),
#                      one `gradflow bench` run per suite in one Python process (the
#                      CLI's --suite takes one name; the ceilings are measured once); a suite
#                      finished before a timeout keeps its figures. Fails when torch cannot use
#                      the GPU (no torch column). bench.json merges the runs' records.
# Dropped, to fit ~300 s: the whole-suite `tests` step (its CPU-only work, tests/kernels'
# g++ emulation first, used the time and the cuda tests were never reached; the CPU runs cover
# it), `pytest benchmarks -m gpu` (pytest-bench.json; the same workloads as `gradflow bench`,
# which times them against torch), the memory soak (benchmarks/soak_memory.py --device cuda;
# its 75 s alone would take a quarter of the call: run it by hand in a later call if device
# time is left), and `nvidia-smi -q` (clocks and power are in machine.txt's CSV line).
# steps.txt gets one line per step: name, exit status (124: timed out; "skipped": no time
# left), seconds, the limit it ran under and its log file. A failing step never stops the
# others (preflight excepted); the exit status is 0 only when every step run exited 0. A step
# that runs out of time gets SIGINT (pytest then still prints its summary), SIGKILL 10 s later.
# Knobs (environment): OUT; ONLY (step names; preflight always runs); PYTHON (default python);
# CAP_PREFLIGHT, CAP_CUDA_TESTS, CAP_NCCL, CAP_DETERMINISM, CAP_TUNE, CAP_BENCH (the caps
# above; keep their sum at or under 290); BENCH_SUITES (default "elementwise fused matmul conv rnn train
# attention"); BENCH_SIZES (default large; a comma-separated list for several).
#
# Turning the outputs into committed files (GPU = a short name from machine.txt's nvidia-smi,
# e.g. h100; DATE = its `date -u` day; cite the GPU name, driver, CUDA runtime and CuPy
# versions from machine.txt and the exact command from the step's log in every record):
#   - bench.json -> benchmarks/results/DATE-GPU-bench.json, and a "GPU, DATE" section in
#     benchmarks/RESULTS.md with bench.txt's tables, the command and the machine line;
#   - determinism.md -> benchmarks/results/DATE-GPU-determinism.md; then update the status
#     note and tables of kernels/README.md from its verdicts;
#   - DATE-dispatch-ARCH.md -> benchmarks/results/ under the same name (the table entry
#     already points there), and dispatch_table.json -> gradflow/kernels/dispatch_table.json
#     after reading the diff;
#   - cuda-tests.txt: its last line (the verdict and pytest's summary) goes into the GPU
#     section of RESULTS.md; each failure is a bug to fix, not a result to commit;
#   - machine.txt, preflight.txt, cuda-tests.xml and the logs are not committed.
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
BENCH_SUITES="${BENCH_SUITES:-elementwise fused matmul conv rnn train attention}"
BENCH_SIZES="${BENCH_SIZES:-large}"
STEPS="preflight cuda-tests nccl determinism tune bench"

for name in $ONLY; do
    if [[ " $STEPS " != *" $name "* ]]; then
        echo "gpu_session: unknown step '$name' in ONLY (steps: $STEPS)" >&2
        exit 2
    fi
done

START_MS=$(date +%s%3N)
FAILED=0     # 1 once a step fails or is skipped: the script's exit status
DEADLINE_S=0 # the sum of the caps so far: a step must end by this many seconds into the run
LAST_RC=0    # the exit status of the last step run_step ran
STEPS_FILE="$OUT/steps.txt"
printf '%-13s %-8s %9s %8s  %s\n' "# step" exit seconds limit_s log >"$STEPS_FILE"

elapsed_ms() { echo $(($(date +%s%3N) - START_MS)); }
tenths() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); } # milliseconds -> "12.3"
stamp() { printf '[%6s s]' "$(tenths "$(elapsed_ms)")"; }

# run_step NAME CAP LOG COMMAND [ARG...]: run COMMAND with stdout and stderr in $OUT/LOG,
# under timeout, and record its exit status (also in LAST_RC) and duration.
run_step() {
    local name=$1 cap=$2 log=$3
    shift 3
    DEADLINE_S=$((DEADLINE_S + cap))
    LAST_RC=0
    if [[ -n "$ONLY" && $name != preflight && " $ONLY " != *" $name "* ]]; then
        return 0
    fi
    local limit=$((DEADLINE_S - $(elapsed_ms) / 1000))
    if ((limit < 5)); then
        printf '%-13s %-8s %9s %8s  %s\n' "$name" skipped - "$limit" "$log" >>"$STEPS_FILE"
        printf '%s %-13s skipped: no time left\n' "$(stamp)" "$name"
        FAILED=1
        LAST_RC=124
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
    LAST_RC=$rc
    local ms=$(($(elapsed_ms) - t0))
    local seconds
    seconds=$(tenths "$ms")
    printf '%-13s %-8s %9s %8s  %s\n' "$name" "$rc" "$seconds" "$limit" "$log" >>"$STEPS_FILE"
    local note=""
    ((rc == 124 || rc == 137)) && note=" (timed out)"
    ((rc != 0)) && FAILED=1
    printf '%s %-13s exit %s%s after %s s: %s\n' "$(stamp)" "$name" "$rc" "$note" "$seconds" \
        "$(tail -n 1 "$OUT/$log" | cut -c1-160)"
}

# The cheap shell half of machine.txt (the Python half is appended by preflight's check).
# shellcheck disable=SC2329  # the steps' functions run through `bash -c NAME` (export -f)
machine_info() {
    echo "## date -u"
    date -u
    echo "## git (absent on a copied tree)"
    git rev-parse HEAD 2>/dev/null && GIT_OPTIONAL_LOCKS=0 git status --short 2>/dev/null | head -n 20
    echo "## nvidia-smi"
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi
        echo "## nvidia-smi --query-gpu (clocks, power, ECC)"
        nvidia-smi --format=csv --query-gpu=name,driver_version,pstate,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu,ecc.mode.current,compute_mode
    else
        echo "(no nvidia-smi on PATH)"
    fi
    echo "## nvcc --version"
    if command -v nvcc >/dev/null 2>&1; then nvcc --version | tail -n 2; else echo "(no nvcc on PATH)"; fi
    echo "## CPU"
    nproc
    grep -m1 'model name' /proc/cpuinfo
    free -g | head -n 2
}

# shellcheck disable=SC2329
preflight() {
    echo "## GRADFLOW_CUDA_STANDIN"
    if [[ -n "${GRADFLOW_CUDA_STANDIN+set}" ]]; then
        echo "PREFLIGHT FAILED: GRADFLOW_CUDA_STANDIN is set (to '${GRADFLOW_CUDA_STANDIN}'):" \
            "gradflow would run on the CPU stand-in of CuPy and every figure would be" \
            "meaningless; unset it and run again"
        return 3
    fi
    echo "unset"
    machine_info >"$OUT/machine.txt" 2>&1
    "$PY" - "$OUT/machine.txt" <<'PYTHON'
"""A real CuPy operation on a real device, through gradflow too; the Python half of machine.txt."""
import contextlib
import json
import os
import sys

info = open(sys.argv[1], "a", encoding="utf-8")


def note(*parts):
    print(*parts, file=info, flush=True)


def fail(message):
    note(f"## PREFLIGHT FAILED: {message}")
    print(f"PREFLIGHT FAILED: {message}", flush=True)
    sys.exit(3)


try:
    import cupy
except Exception as exc:  # ImportError, or a broken CUDA install raising at import
    fail(f"CuPy does not import ({exc!r}); no cuda test or benchmark can run")
source = getattr(cupy, "__file__", None) or ""
array_type = getattr(cupy, "ndarray", type(None))
if "standin" in source or not source.endswith(os.path.join("cupy", "__init__.py")) \
        or not array_type.__module__.startswith("cupy"):
    fail(f"the imported cupy ({source or 'no file'}, arrays {array_type.__module__}) is not the "
         "CuPy package: gradflow's CPU stand-in? a GPU run under it measures nothing")
note("## CuPy", cupy.__version__, "from", source)
try:
    count = int(cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    fail(f"cupy.cuda.runtime.getDeviceCount() raised {exc!r}: no usable CUDA driver or GPU")
if count < 1:
    fail(f"CuPy sees {count} CUDA devices")
try:
    total = int(cupy.arange(10).sum().get())
except Exception as exc:
    fail(f"a CuPy kernel did not run on the GPU: cupy.arange(10).sum() raised {exc!r}")
if total != 45:
    fail(f"cupy.arange(10).sum() is {total} on the GPU, not 45")

import gradflow
from gradflow.backend import Device, get_array_module

if not gradflow.cuda.is_available():
    fail("gradflow.cuda.is_available() is False although CuPy runs on the GPU")
xp = get_array_module(Device("cuda"))
if xp is not cupy:
    fail(f"gradflow's cuda array module is {xp!r}, not the CuPy imported here ({cupy!r})")
try:
    t = gradflow.tensor([1.0, 2.0, 3.0], device="cuda")
    doubled = float((t * 2).sum().item())
except Exception as exc:
    fail(f"gradflow could not compute on cuda: {exc!r}")
if not isinstance(t.data, cupy.ndarray):
    fail(f"a gradflow cuda tensor holds a {type(t.data)!r}, not a cupy.ndarray")
if doubled != 12.0:
    fail(f"gradflow computed sum(2 * [1, 2, 3]) = {doubled} on cuda, not 12")

props = cupy.cuda.runtime.getDeviceProperties(0)
name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
versions = (f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
            f"driver API {cupy.cuda.runtime.driverGetVersion()}")
note("## CUDA devices:", count, "- device 0:", name, f"sm_{props['major']}{props['minor']},",
     f"{props['totalGlobalMem'] / 2**30:.1f} GiB;", versions)
note("## cupy.show_config()")
with contextlib.redirect_stdout(info):
    cupy.show_config()
note("## gradflow", gradflow.__version__, "from", gradflow.__file__)
from gradflow.bench.machine import describe_machine_line, machine_description

note(describe_machine_line())
note(json.dumps(machine_description(), indent=1))
note("## torch")
try:
    import torch

    note(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
    if not torch.cuda.is_available():
        print("WARNING: torch cannot use the GPU: the bench step will have no torch column")
except Exception as exc:
    note(f"(torch does not import: {exc!r})")
    print("WARNING: torch does not import: the bench step will have no torch column")
print(f"preflight: OK: {count} GPU(s), device 0 {name}, CuPy {cupy.__version__}, {versions}")
PYTHON
    local rc=$?
    ((rc != 0)) && return "$rc"
    if ! grep -q '^preflight: OK' "$OUT/preflight.txt"; then
        echo "PREFLIGHT FAILED: the check exited 0 without reporting OK (see $OUT/preflight.txt)"
        return 3
    fi
}

# shellcheck disable=SC2329
cuda_tests() {
    local log="$OUT/cuda-tests.txt" rc summary passed
    GRADFLOW_GRADCHECK=directional "$PY" -m pytest \
        tests/ops tests/nn tests/optim tests/autograd tests/data -m gpu \
        -q -ra --durations=15 -p no:cacheprovider --junitxml "$OUT/cuda-tests.xml"
    rc=$?
    # pytest -q's last line: "700 passed, 3 skipped, 1869 deselected in 98.76s", or
    # "no tests ran in 1.2s", also after a KeyboardInterrupt (SIGINT from timeout).
    summary=$(grep -E '((passed|failed|skipped|deselected|errors?)|no tests ran).* in [0-9.]+s' \
        "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
    passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | cut -d' ' -f1)
    echo
    if ((rc != 0)); then
        echo "cuda-tests: FAILED (pytest exit $rc): ${summary:-no pytest summary}"
        return "$rc"
    elif [[ -z "$summary" || $summary == *"no tests ran"* || ${passed:-0} -eq 0 ]]; then
        echo "cuda-tests: FAILED: no cuda test passed (${summary:-no pytest summary})"
        return 3
    elif grep -q 'no CUDA GPU visible' "$log"; then
        echo "cuda-tests: FAILED: cuda tests were skipped for want of a GPU: ${summary}"
        return 3
    fi
    echo "cuda-tests: OK: ${summary}"
}

# shellcheck disable=SC2329
tune() {
    cp gradflow/kernels/dispatch_table.json "$OUT/dispatch_table.json" || return 2
    "$PY" -m gradflow.bench.tune --write --table "$OUT/dispatch_table.json" --record-dir "$OUT"
}

# shellcheck disable=SC2329
bench() {
    "$PY" - <<'PYTHON'
"""One `gradflow bench` run per suite of BENCH_SUITES in this process (--suite takes one name,
and the ceilings are measured once per process); the records merged into $OUT/bench.json."""
import json
import os
import sys

from gradflow import cli
from gradflow.bench import suites

out, sizes = os.environ["OUT"], os.environ["BENCH_SIZES"]
names = os.environ["BENCH_SUITES"].split()
unknown = [n for n in names if n not in suites.SUITES]
if unknown or not names:
    print(f"bench: unknown suite(s) {unknown} in BENCH_SUITES; known: {', '.join(suites.SUITES)}")
    sys.exit(2)
status, records = 0, []
try:
    if not suites.torch_ready("cuda"):
        print("bench: WARNING: torch cannot run on cuda: no torch column (the step fails)")
        status = 4
    for name in names:
        path = os.path.join(out, f"bench-{name}.json")
        argv = ["bench", "--device", "cuda", "--suite", name, "--sizes", sizes,
                "--compare", "torch", "--json", path, "--no-progress"]
        print(f"\n$ gradflow {' '.join(argv)}", flush=True)
        sys.argv = ["gradflow", *argv]  # the command its record names
        rc = cli.main(argv)
        sys.stdout.flush()
        if rc == 0:
            with open(path, encoding="utf-8") as f:
                records.append(json.load(f))
            os.remove(path)
        else:
            status = status or rc
            if rc == 130:  # interrupted (SIGINT): out of time
                break
except KeyboardInterrupt:  # SIGINT outside a run: keep what finished
    status = 130
if records:
    done = [r["command"][r["command"].index("--suite") + 1] for r in records]
    merged = {
        **records[0],
        "command": ["gradflow", "bench", "--device", "cuda", "--suite", ",".join(done),
                    "--sizes", sizes, "--compare", "torch"],
        "note": "benchmarks/gpu_session.sh: one `gradflow bench` run per suite in one process",
        "runs": [{"command": r["command"], "date": r["date"]} for r in records],
        "results": [row for r in records for row in r["results"]],
    }
    if len(done) < len(names):
        merged["missing_suites"] = [n for n in names if n not in done]
    with open(os.path.join(out, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}/bench.json: suites {', '.join(done)} at {sizes}")
print(f"bench: {'OK' if status == 0 else f'FAILED (status {status})'}: "
      f"{len(records)} of {len(names)} suites")
sys.exit(status)
PYTHON
}

export -f machine_info preflight cuda_tests tune bench
export PY BENCH_SUITES BENCH_SIZES

echo "gpu_session: writing under $OUT (steps.txt has each step's exit status)"
run_step preflight "${CAP_PREFLIGHT:-20}" preflight.txt bash -c preflight
if ((LAST_RC != 0)); then
    reason=$(grep -h 'PREFLIGHT FAILED' "$OUT/preflight.txt" | tail -n 1)
    reason=${reason:-"preflight exited $LAST_RC (see preflight.txt)"}
    echo "# ABORTED: $reason; no step after preflight ran" >>"$STEPS_FILE"
    echo
    echo "gpu_session: ABORTED: $reason"
    echo "gpu_session: no step after preflight ran (see $OUT/preflight.txt, $OUT/machine.txt)"
    cat "$STEPS_FILE"
    exit 3
fi
run_step cuda-tests "${CAP_CUDA_TESTS:-125}" cuda-tests.txt bash -c cuda_tests
run_step nccl "${CAP_NCCL:-15}" nccl.txt "$PY" benchmarks/nccl_check.py
run_step determinism "${CAP_DETERMINISM:-30}" determinism.txt \
    "$PY" benchmarks/determinism_check.py --device cuda --out "$OUT/determinism.md"
run_step tune "${CAP_TUNE:-30}" tune.txt bash -c tune
run_step bench "${CAP_BENCH:-60}" bench.txt bash -c bench

echo
echo "gpu_session: done in $(($(elapsed_ms) / 1000)) s"
cat "$STEPS_FILE"
if [[ -f "$OUT/determinism.md" ]]; then
    echo
    grep -E '^\| |cases in' "$OUT/determinism.md"
fi
for log in cuda-tests.txt nccl.txt bench.txt; do
    [[ -f "$OUT/$log" ]] && echo "$log: $(tail -n 1 "$OUT/$log")"
done
ls -l "$OUT"
exit "$FAILED"
