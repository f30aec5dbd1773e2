#!/usr/bin/env bash
# One call on a machine with a CUDA GPU (the `device` tool): the engine's CUDA path, the
# engine benchmark, the calibration on the gpu-medium preset, the simulator-vs-engine TTFT
# error and fairness in seconds on CUDA. Prepared, not yet run (no GPU lent so far).
#
#   bash bench/gpu_check.sh            # full (about 5-8 min on one recent GPU, estimated)
#   QUICK=1 bash bench/gpu_check.sh    # quick grids (about 2 min, estimated)
#
# Writes to $OUT (the device tool's folder; default ./gpu-check-out): gpu_check.json,
# engine_gpu-medium_cost.json (ship it as data/engine_gpu-medium_cost.json with its
# provenance), bench_engine_cuda.json, and the logs. Needs the project's Python environment
# (torch with CUDA, numpy, pandas, sympy, cvxpy); the device machine reaches no network.
set -u
OUT="${OUT:-./gpu-check-out}"
mkdir -p "$OUT"
Q=""; [ "${QUICK:-0}" = "1" ] && Q="--quick"
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
  python - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
PY
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
python -c "import torch, numpy, pandas, sympy, cvxpy; assert torch.cuda.is_available()" \
  || { echo "gpu_check: the Python environment lacks torch+CUDA or a dependency (see $OUT/env.txt)"; exit 2; }
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)"
timeout 240 python bench/bench_engine.py --device cuda $Q --json "$OUT/bench_engine_cuda.json" \
  > "$OUT/bench_engine.log" 2>&1; echo "bench_engine rc=$?"; tail -15 "$OUT/bench_engine.log"
timeout 360 python bench/gpu_check.py "$OUT" $Q > "$OUT/gpu_check.log" 2>&1; echo "gpu_check rc=$?"
tail -8 "$OUT/gpu_check.log"
python - "$OUT/gpu_check.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("correctness", "calibration", "end_to_end"):
    print(k, d.get(k + "_status"), json.dumps(d.get(k), default=str)[:600])
PY
