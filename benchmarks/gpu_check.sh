#!/usr/bin/env bash
# One prepared GPU run (make gpu-check): the CUDA-marked tests (incl. the no-sync test over every
# registered env and action mode), then each benchmark at GPU sizes, each capped by a timeout so
# the whole script ends within 10 minutes on one H200 (the twin and the queue compile with inductor/triton
# on their first step); all results in one JSON.
# On a machine without CUDA it is a dry run: it says so, lists what it would run, and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
STEPS=(
  "240 $PY -m pytest -m cuda -q -p no:cacheprovider tests"
  "60 $PY benchmarks/bench_vector.py --device cuda --sizes 1024 65536 1048576 --peer-sizes 1024 --seconds 1 --rounds 1 --no-busy --json $OUT/bench_vector.json"
  "120 $PY benchmarks/bench_twin.py --device cuda --sizes 4096 65536 --sumo-envs 1 --seconds 2 --json $OUT/bench_twin.json"
  "45 $PY benchmarks/bench_beamforming.py --device cuda --steps 20 --json $OUT/bench_beamforming.json"
  "45 $PY benchmarks/bench_mixup.py --device cuda --population 256 --steps 50 --json $OUT/bench_mixup.json"
  "90 $PY benchmarks/bench_solvers.py --device cuda --buffers 30 62 --peer-pi-max-states 0 --json $OUT/bench_solvers.json"
)
if ! $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu-check: no CUDA device here (torch.cuda.is_available() is False): dry run, every CUDA step skipped. It would run:"
  for step in "${STEPS[@]}"; do echo "  timeout ${step%% *}s ${step#* }"; done
  exit 0
fi
status=0
for step in "${STEPS[@]}"; do
  limit=${step%% *}; command=${step#* }
  echo "== $command (at most ${limit}s)"
  timeout "$limit" $command || { echo "gpu-check: step failed or timed out (exit $?): $command"; status=1; }
done
$PY - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
merged = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("bench_*.json"))}
(out / "gpu_check.json").write_text(json.dumps(merged, indent=1))
print(f"gpu-check: results in {out / 'gpu_check.json'}")
PYEOF
exit $status
