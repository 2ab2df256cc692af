#!/usr/bin/env bash
# One prepared GPU run (make gpu-check): the CUDA-marked tests (incl. the no-sync test over every
# registered env and action mode), then each benchmark at GPU sizes, each capped by a timeout (the twin
# and the queue compile with inductor/triton on their first step); all results in one JSON, all output in
# gpu_check.log. At most about 12 minutes on one H200; `gpu_check.sh tests mixup` runs only the steps named.
# On a machine without CUDA it is a dry run: it says so, lists what it would run, and exits 0.
# A GPU machine without SUMO (eclipse-sumo and libsumo are ~230 MB of wheels) runs everything but the SUMO
# envs' tests; the twin bench then takes SUMO alone from the stored CPU run and names that machine.
# PY=python3 with ctrlgym installed (pip install -e . --no-deps) runs it outside make's venv.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
# the test files with CUDA cases (the `device` fixture or a `cuda` mark); without SUMO (a GPU machine
# that cannot install it) the traffic folder and the SUMO envs' cases are left out, the twin's kept
TESTS=$(grep -rlE "mark\.cuda|def test_[a-z_0-9]*\(.*\bdevice\b" tests --include='test_*.py' | sort | tr '\n' ' ')
NO_SUMO=""
if ! $PY -c "import sumo, libsumo" >/dev/null 2>&1; then
  TESTS=$(echo "$TESTS" | tr ' ' '\n' | grep -v '^tests/traffic/' | tr '\n' ' ')
  NO_SUMO="not SingleIntersection-v0 and not TrafficSignalEnv-v0"
  SUMO_ALONE="--sumo-envs --sumo-alone-from benchmarks/results/bench_twin.json"  # across machines, and it says so
else
  SUMO_ALONE="--sumo-envs 1"
fi
# name, time limit (s), command; timed on an H200 (2026-12-04): the twin's compiles take most of its limit
# (N = 256 is the issue's smallest size for 100x SUMO alone; 524,288 measured 1.17x 65,536 and was dropped for it)
STEPS=(
  "twin 300 $PY benchmarks/bench_twin.py --device cuda --sizes 256 4096 65536 --numpy-sizes 256 4096 $SUMO_ALONE --seconds 1.5 --no-busy --json $OUT/bench_twin.json"
  "tests 100 $PY -P -m pytest -m cuda -q -p no:cacheprovider $TESTS"
  "vector 100 $PY benchmarks/bench_vector.py --device cuda --sizes 1024 65536 1048576 --peer-sizes 1024 --family-sizes 262144 --seconds 1 --rounds 1 --no-busy --json $OUT/bench_vector.json"
  "beamforming 75 $PY benchmarks/bench_beamforming.py --device cuda --steps 20 --no-busy --json $OUT/bench_beamforming.json"
  "solvers 90 $PY benchmarks/bench_solvers.py --device cuda --buffers 30 --peer-pi-max-states 0 --json $OUT/bench_solvers.json"
  "mixup 45 $PY benchmarks/bench_mixup.py --device cuda --population 256 --steps 50 --json $OUT/bench_mixup.json"
)
# the steps named on the command line (all by default); an unknown name is refused
NAMES=$(for step in "${STEPS[@]}"; do echo -n "${step%% *} "; done)
SELECTED=" ${*:-$NAMES} "
for name in "$@"; do
  [[ " $NAMES" == *" $name "* ]] || { echo "gpu-check: unknown step '$name' (steps: $NAMES)" >&2; exit 2; }
done
if ! $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu-check: no CUDA device here (torch.cuda.is_available() is False): dry run, every CUDA step skipped. It would run:"
  for step in "${STEPS[@]}"; do
    name=${step%% *}; rest=${step#* }
    [[ $SELECTED == *" $name "* ]] && echo "  $name: timeout ${rest%% *}s ${rest#* }"
  done
  exit 0
fi
status=0
for step in "${STEPS[@]}"; do
  name=${step%% *}; rest=${step#* }
  [[ $SELECTED == *" $name "* ]] || continue
  limit=${rest%% *}; command=${rest#* }
  echo "== $command (at most ${limit}s)" | tee -a "$OUT/gpu_check.log"
  select=()  # without SUMO, the tests of the SUMO envs are deselected
  [[ $command == *pytest* && -n $NO_SUMO ]] && select=(-k "$NO_SUMO")
  # the log keeps each step's output, also of a step its time limit stops
  timeout "$limit" $command "${select[@]}" 2>&1 | tee -a "$OUT/gpu_check.log"
  code=${PIPESTATUS[0]}
  ((code == 0)) || { echo "gpu-check: step failed or timed out (exit $code): $command" | tee -a "$OUT/gpu_check.log"; status=1; }
done
$PY - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
merged = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("bench_*.json"))}
(out / "gpu_check.json").write_text(json.dumps(merged, indent=1))
print(f"gpu-check: results in {out / 'gpu_check.json'}")
PYEOF
exit $status
